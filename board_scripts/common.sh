# shellcheck shell=bash
# Sourced by install.sh, uninstall.sh, diagnostics.sh and service.sh: the PYNQ 3.x paths they share and the
# way they print and run commands (every command is printed as "+ command"; with --dry-run it is
# only printed). The paths can be overridden by environment variables so the tests can point the
# scripts at a temporary fake PYNQ environment.

# The Python virtual environment of a PYNQ 3.x image (Jupyter's kernel runs in it, as root).
PYNQ_VENV="${PYNQ_VTA_VENV:-/usr/local/share/pynq-venv}"
# PYNQ 3.x's XRT set-up (exports XILINX_XRT), read by login shells only: sudo and ssh commands miss it.
XRT_SETUP="${PYNQ_VTA_XRT_SETUP:-/etc/profile.d/xrt_setup.sh}"
PY="$PYNQ_VENV/bin/python3"
# shellcheck disable=SC2034  # used by the scripts that source this file
VTA="$PYNQ_VENV/bin/vta"
# The RPC service (service.sh): its user, unit and unit file.
# shellcheck disable=SC2034  # used by the scripts that source this file
SERVICE_USER=vta-rpc
UNIT=vta-rpc.service
# shellcheck disable=SC2034
UNIT_FILE="${PYNQ_VTA_UNIT_DIR:-/etc/systemd/system}/$UNIT"
DRY_RUN=0
SCRIPT_NAME="$(basename "$0")"

say() { printf '%s: %s\n' "$SCRIPT_NAME" "$*"; }

die() {
  printf '%s: error: %s\n' "$SCRIPT_NAME" "$*" >&2
  exit 1
}

# The arguments as one shell command line, each word quoted only when it needs to be.
quote() {
  local out="" word
  for word in "$@"; do
    if [[ "$word" =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then
      out+=" $word"
    else
      out+=" '${word//\'/\'\\\'\'}'"
    fi
  done
  printf '%s' "${out# }"
}

# Print a command, then run it unless this is a dry run.
run() {
  printf '+ %s\n' "$(quote "$@")"
  [ "$DRY_RUN" -eq 1 ] || "$@"
}

# Print a command; unless this is a dry run, run it and store its output (stderr included) in the
# variable named by $1. Returns the command's status (0 in a dry run, where the output is "<dry run>").
capture() {
  local name="$1" _out _status=0
  shift
  printf '+ %s\n' "$(quote "$@")"
  if [ "$DRY_RUN" -eq 1 ]; then
    printf -v "$name" '%s' "<dry run>"
    return 0
  fi
  _out="$("$@" 2>&1)" || _status=$?
  printf -v "$name" '%s' "$_out"
  return "$_status"
}

# Source PYNQ's XRT set-up so pynq finds the device when this script runs under sudo.
source_xrt_setup() {
  if [ ! -f "$XRT_SETUP" ]; then
    say "warning: $XRT_SETUP not found (not a PYNQ 3.x image?); pynq may report 'No Devices Found'"
    return 0
  fi
  printf '+ . %s\n' "$(quote "$XRT_SETUP")"
  [ "$DRY_RUN" -eq 1 ] && return 0
  set +u  # the set-up script may read unset variables
  # shellcheck source=/dev/null
  . "$XRT_SETUP" >/dev/null || die "sourcing $XRT_SETUP failed"
  set -u
}

# Stop unless PYNQ's virtual environment is there (a dry run only notes it).
require_venv() {
  [ -x "$PY" ] && return 0
  local why="no Python interpreter at $PY: this script is for a stock PYNQ 3.x image, whose virtual environment is $PYNQ_VENV (set PYNQ_VTA_VENV to use another)"
  [ "$DRY_RUN" -eq 1 ] && { say "note: $why"; return 0; }
  die "$why"
}

# Stop unless running as root (PYNQ's environment belongs to root; the driver maps /dev/mem).
require_root() {
  [ "$DRY_RUN" -eq 1 ] && return 0
  [ "$(id -u)" -eq 0 ] || die "run as root: sudo bash $0${1:+ $1}"
}
