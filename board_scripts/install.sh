#!/usr/bin/env bash
# Install pynq-vta on a Pynq-Z1 running a stock PYNQ 3.x image: into PYNQ's own virtual
# environment (the one Jupyter uses), with that environment's interpreter for every step.
if [ -z "${BASH_VERSION:-}" ]; then  # e.g. `sh install.sh`: the script needs bash
  echo "install.sh: run it with bash: sudo bash $0" >&2
  exit 1
fi
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: sudo bash install.sh [--source PATH] [--offline] [--bitstream FILE] [--emulate] [--dry-run]

Installs pynq-vta on a Pynq-Z1 with a stock PYNQ 3.x image (Python >= 3.10, pynq >= 3.0 in the
virtual environment /usr/local/share/pynq-venv), as root:
  1. checks that environment's Python and pynq versions (the same interpreter installs);
  2. pip-installs pynq-vta with its "board" extra from PATH into that environment;
  3. builds (or loads) the C board driver and prints `vta info`;
  4. puts the bitstream in the cache, checksum-verified: `vta bitstream fetch` downloads the
     release unless a verified copy is cached; --bitstream takes a local file instead;
  5. runs `vta selftest` (programs the FPGA, runs known programs, compares with numpy);
then prints what it did. Running it again re-installs the same files and keeps a verified
cached bitstream.

Options:
  --source PATH     a pynq-vta checkout, wheel (.whl) or sdist (.tar.gz); default: the checkout
                    this script is in (pynq-vta is not on PyPI)
  --offline         no network: pip uses only PATH and what the environment has (--no-index,
                    --no-build-isolation); give --bitstream too unless the bitstream is cached
  --bitstream FILE  verify FILE (name, size, sha256, header) and copy it into the cache
                    instead of downloading
  --emulate         run the self-test on a temporary emulated board (off-board testing of this
                    script; needs neither root nor a bitstream)
  --dry-run         print every command without running any
  -h, --help        this text

Environment (for testing off the board): PYNQ_VTA_VENV (default /usr/local/share/pynq-venv),
PYNQ_VTA_XRT_SETUP (default /etc/profile.d/xrt_setup.sh).
EOF
}

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=board_scripts/common.sh
. "$HERE/common.sh"

SOURCE="" OFFLINE=0 BITSTREAM="" EMULATE=0
ARGS="$*"
while [ $# -gt 0 ]; do
  case "$1" in
    --source) [ $# -ge 2 ] || die "--source needs a path"; SOURCE="$2"; shift 2 ;;
    --offline) OFFLINE=1; shift ;;
    --bitstream) [ $# -ge 2 ] || die "--bitstream needs a file"; BITSTREAM="$2"; shift 2 ;;
    --emulate) EMULATE=1; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

# An absolute path for $1, so the commands below do not depend on the current directory.
absolute() {
  if [ -d "$1" ]; then (cd "$1" && pwd); else (cd "$(dirname "$1")" && printf '%s/%s' "$(pwd)" "$(basename "$1")"); fi
}

# What pip installs: PATH plus the "board" extra (pynq >= 3.0, which the image already has).
resolve_source() {
  if [ -z "$SOURCE" ]; then
    SOURCE="$(dirname "$HERE")"
    [ -f "$SOURCE/pyproject.toml" ] || die "$HERE is not inside a pynq-vta checkout: pass --source PATH (a checkout, wheel or sdist)"
  fi
  [ -e "$SOURCE" ] || die "--source $SOURCE: no such file or directory"
  SOURCE="$(absolute "$SOURCE")"
  case "$SOURCE" in
    *.whl) KIND=wheel ;;
    *.tar.gz|*.zip) KIND=sdist ;;
    *) [ -f "$SOURCE/pyproject.toml" ] || die "--source $SOURCE: expected a pynq-vta checkout (with pyproject.toml), a .whl or a .tar.gz"
       KIND=checkout ;;
  esac
  if [ "$KIND" != wheel ] && ! command -v gcc >/dev/null 2>&1; then
    die "gcc not found: installing from a $KIND compiles the board driver (C): apt-get install build-essential"
  fi
}

check_environment() {
  local found
  capture found "$PY" -c 'import sys, importlib.metadata as m; v = m.version("pynq"); print("Python", sys.version.split()[0] + ", pynq", v); sys.exit(sys.version_info < (3, 10) or int(v.split(".")[0]) < 3)' \
    || die "$PYNQ_VENV needs Python >= 3.10 and pynq >= 3.0 (a stock PYNQ 3.x image has both); found: ${found##*$'\n'}"
  say "found $found"
  DONE+=("environment: $PYNQ_VENV ($found)")
}

install_package() {
  local pip=("$PY" -m pip install --disable-pip-version-check)
  [ "$OFFLINE" -eq 1 ] && pip+=(--no-index --no-build-isolation)
  # pip re-installs from a checkout every time, but keeps an installed version equal to a wheel's
  # or sdist's: uninstall first, so what ends up installed is always this file.
  [ "$KIND" = checkout ] || run "$PY" -m pip uninstall --disable-pip-version-check -y pynq-vta
  run "${pip[@]}" "${SOURCE}[board]" || die "pip could not install $SOURCE into $PYNQ_VENV (see pip's message above)"
  DONE+=("installed: pynq-vta from the $KIND $SOURCE into $PYNQ_VENV")
}

build_driver() {
  local driver
  capture driver "$PY" -c 'from vta.driver import _ffi; print(_ffi.load().__file__)' \
    || die "the board driver could not be built or loaded: ${driver##*$'\n'}"
  say "driver: $driver"
  DONE+=("driver: $driver")
  run "$VTA" info
}

install_bitstream() {
  local dest
  if [ -n "$BITSTREAM" ]; then
    if [ -f "$BITSTREAM" ]; then
      BITSTREAM="$(absolute "$BITSTREAM")"
    elif [ "$DRY_RUN" -eq 1 ]; then
      say "note: --bitstream $BITSTREAM: no such file; a real run would stop here"
    else
      die "--bitstream $BITSTREAM: no such file"
    fi
    run "$VTA" bitstream verify "$BITSTREAM" || die "$BITSTREAM is not the bitstream this configuration needs (see above); nothing was copied"
    capture dest "$PY" -c 'from vta.bitstream.store import cache_path; print(cache_path())' \
      || die "cannot find the bitstream cache: $dest"
    printf '+ %s\n' "$(quote cmp -s "$BITSTREAM" "$dest")"
    if [ "$DRY_RUN" -eq 0 ] && cmp -s "$BITSTREAM" "$dest"; then
      say "$dest is already this file"
    else
      run install -D -m 644 "$BITSTREAM" "$dest"
    fi
  elif [ "$EMULATE" -eq 1 ]; then
    DONE+=("bitstream: skipped (--emulate: the emulated board needs none)")
    return 0
  else
    run "$VTA" bitstream fetch || die "could not fetch the bitstream (offline? copy it to the board and pass --bitstream FILE)"
  fi
  run "$VTA" bitstream verify || die "the cached bitstream does not verify (see above)"
  DONE+=("bitstream: verified in the cache${BITSTREAM:+ (from $BITSTREAM)}")
}

selftest() {
  local args=(selftest)
  [ "$EMULATE" -eq 1 ] && args+=(--emulate)
  run "$VTA" "${args[@]}" || die "the self-test failed (see above); \`sudo bash $HERE/diagnostics.sh\` collects what a bug report needs"
  DONE+=("selftest: passed ($(quote vta "${args[@]}"))")
}

DONE=()
[ "$DRY_RUN" -eq 1 ] && say "dry run: printing the commands without running them"
[ "$EMULATE" -eq 1 ] || require_root "$ARGS"
resolve_source
require_venv
source_xrt_setup
cd /  # nothing below may import from the current directory
check_environment
install_package
build_driver
install_bitstream
selftest
if [ "$DRY_RUN" -eq 1 ]; then
  say "dry run done: nothing was run"
else
  say "done:"
  printf '  %s\n' "${DONE[@]}"
fi
