#!/bin/sh
# Install pynq-vta on a Pynq-Z1 (PYNQ image, run as the xilinx user with sudo rights).
# Usage: sh install.sh [path-to-pynq-vta-checkout]   (default: the checkout this script is in)
set -eu
SRC="${1:-$(cd "$(dirname "$0")/.." && pwd)}"
PY="${PYTHON:-python3}"
if ! command -v gcc >/dev/null 2>&1; then
    echo "install.sh: gcc not found; the board driver is C code compiled at install: sudo apt install build-essential" >&2
    exit 1
fi
"$PY" -c "import pynq" 2>/dev/null || {
    echo "install.sh: the pynq package is missing: use a PYNQ board image (v2.5 or later), or pip install pynq" >&2
    exit 1
}
sudo -H "$PY" -m pip install "$SRC[board]"
sudo -H "$PY" -c "from vta.driver import _ffi; print('driver:', _ffi.load().__file__)"
echo "installed; next: sudo vta program && sudo vta selftest"
