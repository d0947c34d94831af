#!/usr/bin/env bash
# Install, remove or inspect the systemd service that runs `vta rpc serve` in service mode (TLS and a
# pre-shared token) as its own unprivileged user, on the address the user chooses.
if [ -z "${BASH_VERSION:-}" ]; then  # e.g. `sh service.sh`: the script needs bash
  echo "service.sh: run it with bash: sudo bash $0" >&2
  exit 1
fi
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: sudo bash service.sh install --listen ADDRESS:PORT [--token-file FILE]
                                    [--tls-cert FILE --tls-key FILE] [--any-address] [--dry-run]
       sudo bash service.sh uninstall [--dry-run]
       sudo bash service.sh status

install (after install.sh) sets up the systemd service vta-rpc.service, as root:
  1. checks the cached bitstream of the active configuration (install.sh put it there);
  2. creates the system user vta-rpc (no login, no home) unless it exists;
  3. puts the token, the TLS certificate and key in /etc/vta-rpc, owned by vta-rpc, mode 0600
     (the certificate 0644): the given files, else the ones there, else new ones (a token from
     Python's `secrets`, a self-signed certificate for ADDRESS from `openssl`);
  4. installs a udev rule that gives vta-rpc's group read-write access to /dev/mem;
  5. writes the unit from vta-rpc.service.in next to this script, then systemctl daemon-reload,
     enable and restart it; prints how a host connects.
Each start programs the FPGA as root (the unit's ExecStartPre), then serves as vta-rpc with
only CAP_SYS_RAWIO. Running install again rewrites the unit and keeps the secrets (a self-made
certificate is made again if the address changed).
uninstall stops and removes the service, its unit, udev rule, secrets, state and user.
status prints systemctl's status of the service.

Options:
  --listen ADDRESS:PORT  the address to serve on, e.g. 192.168.2.99:9091 or [fd00::2]:9091;
                         every interface (0.0.0.0, ::) only with --any-address
  --token-file FILE      use this token (at least 16 characters) instead of generating one
  --tls-cert FILE        the service's certificate chain (PEM), with --tls-key
  --tls-key FILE         its private key (PEM)
  --any-address          allow --listen on every interface (with a warning)
  --dry-run              print every command and file without running or writing any
  -h, --help             this text

Environment (for testing off the board): PYNQ_VTA_VENV (default /usr/local/share/pynq-venv),
PYNQ_VTA_XRT_SETUP (default /etc/profile.d/xrt_setup.sh), PYNQ_VTA_SERVICE_CONF (default
/etc/vta-rpc), PYNQ_VTA_UNIT_DIR (default /etc/systemd/system).
EOF
}

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=board_scripts/common.sh
. "$HERE/common.sh"

CONF_DIR="${PYNQ_VTA_SERVICE_CONF:-/etc/vta-rpc}"
UDEV_RULE=/etc/udev/rules.d/60-vta-rpc.rules
LOCK=/tmp/vta-pynq.lock
TOKEN_CODE='import secrets; print(secrets.token_urlsafe(32))'
MIN_TOKEN_CHARS=16

[ $# -gt 0 ] || die "missing the command: install, uninstall or status (see --help)"
case "$1" in
  -h|--help) usage; exit 0 ;;
  install|uninstall|status) COMMAND="$1"; shift ;;
  *) die "unknown command '$1': expected install, uninstall or status (see --help)" ;;
esac
LISTEN="" TOKEN_FILE="" TLS_CERT="" TLS_KEY="" ANY_ADDRESS=0
ARGS="$COMMAND${*:+ $*}"
while [ $# -gt 0 ]; do
  case "$1" in
    --listen) [ $# -ge 2 ] || die "--listen needs ADDRESS:PORT"; LISTEN="$2"; shift 2 ;;
    --token-file) [ $# -ge 2 ] || die "--token-file needs a file"; TOKEN_FILE="$2"; shift 2 ;;
    --tls-cert) [ $# -ge 2 ] || die "--tls-cert needs a file"; TLS_CERT="$2"; shift 2 ;;
    --tls-key) [ $# -ge 2 ] || die "--tls-key needs a file"; TLS_KEY="$2"; shift 2 ;;
    --any-address) ANY_ADDRESS=1; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
if [ "$COMMAND" != install ]; then
  for given in "$LISTEN" "$TOKEN_FILE" "$TLS_CERT" "$TLS_KEY"; do
    [ -z "$given" ] || die "$COMMAND takes no --listen, --token-file, --tls-cert or --tls-key (see --help)"
  done
fi

# ADDRESS:PORT -> HOST and PORT; the address every interface answers on needs --any-address.
parse_listen() {
  [ -n "$LISTEN" ] || die "install needs --listen ADDRESS:PORT, the address hosts reach the board on (e.g. 192.168.2.99:9091; \`ip -brief address\` lists the board's)"
  case "$LISTEN" in
    \[*\]:*) HOST="${LISTEN%%]:*}"; HOST="${HOST#[}"; PORT="${LISTEN##*]:}" ;;
    *:*:*) die "--listen $LISTEN: write an IPv6 address in brackets, e.g. [fd00::2]:9091" ;;
    *:*) HOST="${LISTEN%:*}"; PORT="${LISTEN##*:}" ;;
    *) die "--listen $LISTEN: expected ADDRESS:PORT, e.g. 192.168.2.99:9091" ;;
  esac
  [ -n "$HOST" ] || die "--listen $LISTEN: no address before the port"
  if ! [[ "$PORT" =~ ^[0-9]{1,5}$ ]] || [ "$PORT" -lt 1 ] || [ "$PORT" -gt 65535 ]; then
    die "--listen $LISTEN: the port must be a number in 1..65535"
  fi
  [[ "$HOST" =~ ^[A-Za-z0-9.:-]+$ ]] || die "--listen $LISTEN: '$HOST' is not an IP address or host name"
  if [[ "$HOST" =~ ^[0.:]+$ ]]; then  # 0.0.0.0, 0, ::, 0::0...: the unspecified address
    [ "$ANY_ADDRESS" -eq 1 ] || die "--listen $LISTEN binds every network interface of the board; give the address of the network the hosts use, or add --any-address if you mean every interface"
    say "warning: --listen $LISTEN binds every network interface: anyone who can reach port $PORT and has the token can use the device (and, through it, the board's memory)"
  fi
  if [[ "$HOST" == *:* ]]; then URL_HOST="[$HOST]"; else URL_HOST="$HOST"; fi
  if [[ "$HOST" =~ ^[0-9.]+$ || "$HOST" == *:* ]]; then SAN="IP:$HOST"; else SAN="DNS:$HOST"; fi
}

# Print a file's content, then write it unless this is a dry run.
put() {
  local mode="$1" dest="$2" content="$3"
  printf '+ %s <<EOF\n%sEOF\n' "$(quote install -m "$mode" /dev/stdin "$dest")" "$content"
  [ "$DRY_RUN" -eq 1 ] || printf '%s' "$content" | install -m "$mode" /dev/stdin "$dest"
}

# Run a command that writes a secret to stdout into FILE, created with mode 0600.
secret_from() {
  local dest="$1"
  shift
  printf '+ %s > %s\n' "$(quote "$@")" "$(quote "$dest")"
  [ "$DRY_RUN" -eq 1 ] && return 0
  (umask 077 && "$@" >"$dest") || die "could not write $dest"
}

# Install FILE (a given secret or certificate) as DEST, owned by the service user.
take() {
  local src="$1" dest="$2" mode="$3"
  if [ ! -f "$src" ]; then
    [ "$DRY_RUN" -eq 1 ] || die "$src: no such file"
    say "note: $src: no such file; a real run would stop here"
  fi
  run install -m "$mode" -o "$SERVICE_USER" -g "$SERVICE_USER" "$src" "$dest"
}

exists() { [ "$DRY_RUN" -eq 1 ] || [ -e "$1" ]; }

# Whether the certificate in FILE names HOST (what the client checks: TLS hostname verification).
cert_matches() {
  local check=-checkhost out
  [[ "$SAN" == IP:* ]] && check=-checkip
  out="$(openssl x509 -in "$1" -noout "$check" "$HOST" 2>/dev/null)" || return 1
  [[ "$out" == *" does match certificate" ]]
}

check_bitstream() {
  capture BITSTREAM "$PY" -c 'from vta.bitstream.store import cache_path; print(cache_path())' \
    || die "cannot find the bitstream cache (is pynq-vta installed? run install.sh first): ${BITSTREAM##*$'\n'}"
  [ "$DRY_RUN" -eq 0 ] || BITSTREAM="<cached-bitstream>"
  run "$VTA" bitstream verify "$BITSTREAM" \
    || die "the cached bitstream $BITSTREAM does not verify: run install.sh first (it fetches and checks it)"
  DONE+=("bitstream: $BITSTREAM (verified; programmed as root at every start)")
}

create_user() {
  if [ "$DRY_RUN" -eq 0 ] && getent passwd "$SERVICE_USER" >/dev/null; then
    say "user $SERVICE_USER exists"
  else
    run useradd --system --user-group --home-dir "/var/lib/$SERVICE_USER" --no-create-home \
      --shell /usr/sbin/nologin "$SERVICE_USER"
  fi
  DONE+=("user: $SERVICE_USER (system user, no login)")
}

install_secrets() {
  local token="$CONF_DIR/token" cert="$CONF_DIR/cert.pem" key="$CONF_DIR/key.pem" chars
  run install -d -m 700 -o "$SERVICE_USER" -g "$SERVICE_USER" "$CONF_DIR"
  if [ -n "$TOKEN_FILE" ]; then
    if [ -f "$TOKEN_FILE" ]; then
      chars="$(tr -d '[:space:]' <"$TOKEN_FILE" | wc -c)"
      [ "$chars" -ge "$MIN_TOKEN_CHARS" ] || die "--token-file $TOKEN_FILE: the token must have at least $MIN_TOKEN_CHARS characters"
    fi
    take "$TOKEN_FILE" "$token" 600
  elif [ "$DRY_RUN" -eq 0 ] && [ -s "$token" ]; then
    say "keeping the token in $token"
  else
    secret_from "$token" "$PY" -c "$TOKEN_CODE"
  fi
  if [ -n "$TLS_CERT" ]; then
    if [ -f "$TLS_CERT" ] && ! cert_matches "$TLS_CERT"; then
      say "warning: $TLS_CERT is not for $HOST: hosts must connect with a name or address it names"
    fi
    take "$TLS_CERT" "$cert" 644
    take "$TLS_KEY" "$key" 600
  elif [ "$DRY_RUN" -eq 0 ] && [ -s "$cert" ] && [ -s "$key" ] && cert_matches "$cert"; then
    say "keeping the certificate $cert (for $HOST) and its key"
  else
    if [ "$DRY_RUN" -eq 0 ] && [ -s "$cert" ]; then
      say "the certificate in $cert is not for $HOST: making a new one (hosts need the new one)"
    fi
    command -v openssl >/dev/null 2>&1 || [ "$DRY_RUN" -eq 1 ] \
      || die "openssl not found: apt-get install openssl, or pass --tls-cert and --tls-key"
    (umask 077 && run openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
      -subj "/CN=$HOST" -addext "subjectAltName=$SAN" -keyout "$key" -out "$cert") \
      || die "openssl could not make a certificate for $HOST"
    run chmod 644 "$cert"
  fi
  run chown "$SERVICE_USER:$SERVICE_USER" "$token" "$cert" "$key"
  DONE+=("secrets: $token, $cert, $key (owned by $SERVICE_USER)")
}

# /dev/mem is root:kmem 0640 (systemd's 50-udev-default.rules); opening it needs CAP_SYS_RAWIO as well,
# so the group change gives nothing to anyone without that capability.
install_udev_rule() {
  put 644 "$UDEV_RULE" "# pynq-vta's RPC service (board_scripts/service.sh): /dev/mem read-write for group $SERVICE_USER
SUBSYSTEM==\"mem\", KERNEL==\"mem\", GROUP=\"$SERVICE_USER\", MODE=\"0660\"
"
  run udevadm control --reload
  run udevadm trigger --action=change --subsystem-match=mem --sysname-match=mem
  DONE+=("udev: $UDEV_RULE (/dev/mem group $SERVICE_USER, mode 0660)")
}

# The group of zocl's DRM render node: XRT opens /dev/dri/by-path/platform-*zyxclmm_drm-render (the
# zocl node of PYNQ's device tree) to allocate pynq's DMA buffers; any render node if that link is absent.
render_group() {
  local node
  for node in /dev/dri/by-path/platform-*zyxclmm_drm-render /dev/dri/renderD*; do
    [ -e "$node" ] && { stat -L -c %G "$node"; return 0; }
  done
  printf 'render\n'  # systemd's udev rules give render nodes to the group "render"
}

install_unit() {
  local group xrt unit
  group="$(render_group)"
  [ "$group" != root ] || die "the DRM render node belongs to the group root: give it to the group render (systemd's udev rules do) and run this again"
  if [ "$DRY_RUN" -eq 0 ]; then
    getent group "$group" >/dev/null || die "group $group (of the DRM render node) does not exist"
    xrt="${XILINX_XRT:-}"
    [ -n "$xrt" ] || die "XILINX_XRT is not set after sourcing $XRT_SETUP: pynq cannot find XRT's library"
  else
    xrt="${XILINX_XRT:-/usr}"  # what PYNQ 3.x's xrt_setup.sh exports
  fi
  unit="$(sed -e "s|@USER@|$SERVICE_USER|g" -e "s|@LISTEN@|$LISTEN|g" -e "s|@HOST@|$HOST|g" \
    -e "s|@PORT@|$PORT|g" -e "s|@VTA@|$VTA|g" -e "s|@CONF_DIR@|$CONF_DIR|g" -e "s|@LOCK@|$LOCK|g" \
    -e "s|@BITSTREAM@|$BITSTREAM|g" -e "s|@RENDER_GROUP@|$group|g" -e "s|@XILINX_XRT@|$xrt|g" \
    "$HERE/vta-rpc.service.in")"
  put 644 "$UNIT_FILE" "$unit
"
  run systemctl daemon-reload
  run systemctl enable "$UNIT"
  run systemctl restart "$UNIT"
  DONE+=("service: $UNIT_FILE, enabled and (re)started, serving on $LISTEN")
}

connect_help() {
  cat <<EOF

On each host (pip install ".[rpc]" from the pynq-vta checkout), with copies of the board's
$CONF_DIR/cert.pem as vta-cert.pem and $CONF_DIR/token as vta-token (root-only files: copy
them with sudo, as docs/remote.md shows, and keep vta-token mode 0600 on the host too):
  from vta.runtime import Runtime
  rt = Runtime("rpc", url="tcp+tls://$URL_HOST:$PORT", cafile="vta-cert.pem", token_file="vta-token")
EOF
}

# vta rpc serve speaks msgpack (pynq-vta's rpc extra), which a stock PYNQ image does not have.
install_wire_format() {
  if [ "$DRY_RUN" -eq 0 ] && "$PY" -c 'import msgpack' 2>/dev/null; then
    say "msgpack (the wire format of vta rpc serve) is installed"
    return
  fi
  run "$PY" -m pip install --disable-pip-version-check "msgpack>=1.0" \
    || die "pip could not install msgpack, the wire format of vta rpc serve; offline, copy its wheel (pip download msgpack on a connected machine) and pip install it into $PYNQ_VENV"
}

cmd_install() {
  parse_listen
  if { [ -n "$TLS_CERT" ] && [ -z "$TLS_KEY" ]; } || { [ -z "$TLS_CERT" ] && [ -n "$TLS_KEY" ]; }; then
    die "--tls-cert and --tls-key go together"
  fi
  require_root "$ARGS"
  require_venv
  source_xrt_setup
  cd /
  install_wire_format
  check_bitstream
  create_user
  install_secrets
  install_udev_rule
  install_unit
}

cmd_uninstall() {
  require_root "$ARGS"
  cd /
  if exists "$UNIT_FILE"; then
    run systemctl disable --now "$UNIT"
    run rm -f "$UNIT_FILE"
    run systemctl daemon-reload
    DONE+=("removed the service $UNIT")
  fi
  if exists "$UDEV_RULE"; then
    run rm -f "$UDEV_RULE"
    run udevadm control --reload
    run udevadm trigger --action=change --subsystem-match=mem --sysname-match=mem
    DONE+=("removed $UDEV_RULE")
  fi
  local dir
  for dir in "$CONF_DIR" "/var/lib/$SERVICE_USER" "/var/cache/$SERVICE_USER"; do
    if exists "$dir"; then
      run rm -rf "$dir"
      DONE+=("removed $dir")
    fi
  done
  if [ "$DRY_RUN" -eq 1 ] || getent passwd "$SERVICE_USER" >/dev/null; then
    run userdel "$SERVICE_USER"
    DONE+=("removed the user $SERVICE_USER")
  fi
  if [ "$DRY_RUN" -eq 0 ] && getent group "$SERVICE_USER" >/dev/null; then
    run groupdel "$SERVICE_USER"
  fi
  [ "${#DONE[@]}" -gt 0 ] || say "the service is not installed: nothing to remove"
}

DONE=()
[ "$DRY_RUN" -eq 1 ] && say "dry run: printing the commands without running them"
case "$COMMAND" in
  status) run systemctl status --no-pager "$UNIT"; exit ;;
  install) cmd_install ;;
  uninstall) cmd_uninstall ;;
esac
if [ "$DRY_RUN" -eq 1 ]; then
  say "dry run done: nothing was run"
else
  say "done:"
  [ "${#DONE[@]}" -eq 0 ] || printf '  %s\n' "${DONE[@]}"
fi
[ "$COMMAND" = install ] && connect_help
exit 0
