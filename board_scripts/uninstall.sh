#!/usr/bin/env bash
# Remove pynq-vta from the PYNQ 3.x virtual environment (what install.sh put there).
if [ -z "${BASH_VERSION:-}" ]; then  # e.g. `sh uninstall.sh`: the script needs bash
  echo "uninstall.sh: run it with bash: sudo bash $0" >&2
  exit 1
fi
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: sudo bash uninstall.sh [--purge] [--dry-run]

Uninstalls pynq-vta from the virtual environment of a stock PYNQ 3.x image
(/usr/local/share/pynq-venv), as root. The environment's other packages (pynq, numpy, cffi)
stay. The RPC service, if service.sh installed it, is removed first (service.sh uninstall).
Running it again when nothing is installed does nothing.

Options:
  --purge     also delete root's driver build cache (~/.cache/pynq-vta) and the cached VTA
              bitstream of the active configuration (the rest of ~/.vta_cache is upstream VTA's)
  --dry-run   print every command without running any
  -h, --help  this text

Environment (for testing off the board): PYNQ_VTA_VENV (default /usr/local/share/pynq-venv),
PYNQ_VTA_UNIT_DIR (where the service's unit is, default /etc/systemd/system).
EOF
}

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=board_scripts/common.sh
. "$HERE/common.sh"

PURGE=0
ARGS="$*"
while [ $# -gt 0 ]; do
  case "$1" in
    --purge) PURGE=1; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

[ "$DRY_RUN" -eq 1 ] && say "dry run: printing the commands without running them"
require_root "$ARGS"
require_venv
cd /
DONE=()
# Ask the package where its caches are (before it is gone) and delete them.
purge() {
  local driver_cache bitstream
  if capture driver_cache "$PY" -c 'from vta.driver import _ffi; print(_ffi.cache_root())'; then
    [ "$DRY_RUN" -eq 1 ] && driver_cache="<the directory printed above>"
    case "$driver_cache" in
      /*/pynq-vta/driver|"<"*) ;;
      *) die "refusing to delete '$driver_cache' (expected a directory ending in /pynq-vta/driver)" ;;
    esac
    run rm -rf "$driver_cache"
    DONE+=("removed the driver build cache $driver_cache")
  else
    say "the driver build cache is unknown (${driver_cache##*$'\n'}); not removed"
  fi
  if capture bitstream "$PY" -c 'from vta.bitstream.store import cache_path; print(cache_path())'; then
    [ "$DRY_RUN" -eq 1 ] && bitstream="<the file printed above>"
    case "$bitstream" in
      /*.bit|/*.rbf|"<"*) ;;
      *) die "refusing to delete '$bitstream' (expected a .bit or .rbf file)" ;;
    esac
    run rm -f "$bitstream"
    DONE+=("removed the cached bitstream $bitstream")
  else
    say "the cached bitstream is unknown (${bitstream##*$'\n'}); not removed"
  fi
}

# The RPC service runs the package's `vta`: it goes first (service.sh says what it removes).
if [ -e "$UNIT_FILE" ]; then
  printf '+ %s\n' "$(quote bash "$HERE/service.sh" uninstall)"
  if [ "$DRY_RUN" -eq 1 ]; then
    bash "$HERE/service.sh" uninstall --dry-run | grep '^+ '  # what it would run
  else
    bash "$HERE/service.sh" uninstall || die "could not remove the RPC service (see above)"
  fi
  DONE+=("removed the RPC service $UNIT")
fi
[ "$PURGE" -eq 1 ] && purge
if capture shown "$PY" -m pip show --disable-pip-version-check pynq-vta; then
  run "$PY" -m pip uninstall --disable-pip-version-check -y pynq-vta
  DONE+=("uninstalled pynq-vta from $PYNQ_VENV")
else
  say "pynq-vta is not installed in $PYNQ_VENV: nothing to uninstall"
fi
if [ "$DRY_RUN" -eq 1 ]; then
  say "dry run done: nothing was run"
else
  say "done:"
  [ "${#DONE[@]}" -eq 0 ] || printf '  %s\n' "${DONE[@]}"
fi
