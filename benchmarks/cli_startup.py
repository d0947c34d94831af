"""Start-up time of the command line: ``vta --help`` and ``vta info`` against ``python -c pass``.

Each command runs in a fresh interpreter, best of ``--repeat``; the baseline is measured in the
same run, so the ratios hold on a noisy, shared machine where absolute times do not. The parser
imports no compiler, simulator or numpy (``tests/test_cli.py`` checks the import list); the
target is ``vta --help`` at most 3x ``python -c pass``.

Usage: python benchmarks/cli_startup.py [--repeat N] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from _common import best

TARGET_RATIO = 3.0
COMMANDS = {"python -c pass": ["-c", "pass"], "vta --help": ["-m", "vta.cli", "--help"],
            "vta info": ["-m", "vta.cli", "info"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--json", default=str(Path(__file__).parent / "results" / "cli_startup.json"))
    args = ap.parse_args()
    times = {}
    for _ in range(2):  # interleaved passes, so a slow phase of the machine hits every command alike
        for name, argv in COMMANDS.items():
            t = best(lambda argv=argv: subprocess.run([sys.executable, *argv], check=True,
                                                      stdout=subprocess.DEVNULL), args.repeat)
            times[name] = min(t, times.get(name, t))
    base = times["python -c pass"]
    print(f"{'command':16s} {'best ms':>8s} {'x python -c pass':>17s}")
    for name, t in times.items():
        print(f"{name:16s} {t * 1e3:8.1f} {t / base:17.2f}")
    print(f"target: vta --help <= {TARGET_RATIO:g}x python -c pass")
    Path(args.json).write_text(json.dumps({"seconds": times, "ratio": {k: v / base for k, v in times.items()},
                                           "target_ratio": TARGET_RATIO}, indent=1))


if __name__ == "__main__":
    main()
