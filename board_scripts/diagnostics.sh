#!/usr/bin/env bash
# Collect what a pynq-vta bug report from a Pynq board needs, in one text report. Every item is
# printed with the command that produced it; a failing item is reported and the next one runs.
if [ -z "${BASH_VERSION:-}" ]; then  # e.g. `sh diagnostics.sh`: the script needs bash
  echo "diagnostics.sh: run it with bash: sudo bash $0" >&2
  exit 1
fi
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: sudo bash diagnostics.sh [--output FILE] [--no-selftest] [--emulate] [--lock FILE] [--dry-run]

Prints a report for a bug report about pynq-vta on a PYNQ 3.x board: the image version, board
model, kernel, CMA memory, the versions in PYNQ's virtual environment, `vta info`, the board
driver, the cached bitstream and the FPGA manager's state, who holds the device lock, the RPC
service's state (if service.sh installed it), and the output of `vta selftest` (which
re-programs the FPGA with the cached bitstream; it reports the device as busy instead if
another process holds the lock). Run it as root, like the notebooks.

Options:
  --output FILE  write the report to FILE instead of the terminal
  --no-selftest  leave the FPGA alone: skip `vta selftest`
  --emulate      run the self-test on a temporary emulated board (off-board testing)
  --lock FILE    the device lock file (default /tmp/vta-pynq.lock)
  --dry-run      print every command without running any
  -h, --help     this text

Environment (for testing off the board): PYNQ_VTA_VENV (default /usr/local/share/pynq-venv),
PYNQ_VTA_XRT_SETUP (default /etc/profile.d/xrt_setup.sh), PYNQ_VTA_REVISION (the image's
revision file, default /boot/REVISION), PYNQ_VTA_UNIT_DIR (default /etc/systemd/system).
EOF
}

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=board_scripts/common.sh
. "$HERE/common.sh"
REVISION="${PYNQ_VTA_REVISION:-/boot/REVISION}"

OUTPUT="" SELFTEST=1 EMULATE=0 LOCK=/tmp/vta-pynq.lock
while [ $# -gt 0 ]; do
  case "$1" in
    --output) [ $# -ge 2 ] || die "--output needs a file"; OUTPUT="$2"; shift 2 ;;
    --no-selftest) SELFTEST=0; shift ;;
    --emulate) EMULATE=1; shift ;;
    --lock) [ $# -ge 2 ] || die "--lock needs a file"; LOCK="$2"; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

# Print and run one command of the report; its failure is part of the report, not the end of it.
item() {
  printf '+ %s\n' "$(quote "$@")"
  [ "$DRY_RUN" -eq 1 ] && return 0
  "$@" 2>&1 || printf '(exit status %s)\n' "$?"
}

# `cat` a file that only some images or boards have.
item_file() {
  if [ "$DRY_RUN" -eq 1 ] || [ -e "$1" ]; then
    item cat "$1"
  else
    printf '(%s does not exist)\n' "$1"
  fi
}

section() { printf '\n## %s\n' "$*"; }

lock_owner() {
  if [ "$DRY_RUN" -eq 0 ] && [ ! -e "$LOCK" ]; then
    printf '(no lock file %s: nobody has opened the device since boot)\n' "$LOCK"
    return 0
  fi
  printf '+ %s\n' "$(quote flock -n "$LOCK" true)"
  [ "$DRY_RUN" -eq 1 ] && { item cat "$LOCK"; return 0; }
  if flock -n "$LOCK" true 2>/dev/null; then
    printf 'free: no process holds %s\n' "$LOCK"
    return 0
  fi
  local pid
  # The lock file holds "PID what-it-is-doing" (driver/lock.py): the pid is the first word.
  pid="$(head -n 1 "$LOCK" | cut -d ' ' -f 1 | tr -dc '0-9')"
  printf 'held by pid %s\n' "${pid:-unknown (the lock file names none)}"
  [ -z "$pid" ] || item ps -o pid,user,lstart,args -p "$pid"
}

# The systemd service service.sh installs: its state and recent log (its address is in the unit).
rpc_service() {
  if [ "$DRY_RUN" -eq 0 ] && [ ! -e "$UNIT_FILE" ]; then
    printf '(not installed: no %s)\n' "$UNIT_FILE"
    return 0
  fi
  item systemctl is-active "$UNIT"
  item systemctl status --no-pager --lines=20 "$UNIT"
  item grep -E '^(ExecStart|User|SupplementaryGroups)=' "$UNIT_FILE"
}

report() {
  printf 'pynq-vta diagnostics, %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  [ "$DRY_RUN" -eq 1 ] && say "dry run: printing the commands without running them"
  source_xrt_setup
  cd /
  section "image and board"
  item_file "$REVISION"
  item grep PRETTY_NAME /etc/os-release
  item_file /proc/device-tree/model
  item uname -a
  item grep -i cma /proc/meminfo
  section "Python environment $PYNQ_VENV"
  item "$PY" --version
  item "$PY" -m pip show --disable-pip-version-check pynq pynq-vta numpy cffi
  section "pynq-vta"
  item "$VTA" info
  item "$PY" -c 'from vta.driver import _ffi; print(_ffi.load().__file__)'
  section "bitstream"
  item "$VTA" bitstream list
  item "$VTA" bitstream verify
  item_file /sys/class/fpga_manager/fpga0/state
  section "device lock"
  lock_owner
  section "rpc service"
  rpc_service
  section "selftest"
  if [ "$SELFTEST" -eq 0 ]; then
    printf '(skipped: --no-selftest)\n'
  elif [ "$EMULATE" -eq 1 ]; then
    item "$VTA" selftest --emulate
  else
    item "$VTA" selftest
  fi
}

if [ -n "$OUTPUT" ]; then
  say "writing the report to $OUTPUT"
  report >"$OUTPUT" 2>&1
  say "done: attach $OUTPUT to the bug report"
else
  report
fi
