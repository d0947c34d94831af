"""``vta tune``: the command line of the auto-tuner (:mod:`vta.compiler.tune.command`).

Only the argument parser lives here, at the package root, so ``vta --help`` registers the
command without importing the compiler; the names of measurers and strategies are checked when
the command runs.
"""

from __future__ import annotations

import argparse


def _cmd_tune(args: argparse.Namespace) -> int:
    from vta.compiler.tune.command import run

    return run(args)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``vta tune``."""
    p = sub.add_parser("tune", help="auto-tune conv2d/dense schedules and write an AutoTVM log")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--tasks", help="JSON-lines workloads (shared/calibration format or AutoTVM lines)")
    src.add_argument("--layers", help="ResNet-18 layers, e.g. C2,C8")
    p.add_argument("--trials", type=int, default=32, help="measurements per task (default 32)")
    p.add_argument("--measurer", default="model",
                   help="model (timing only), sim (run and check), board/pynq, rpc (a served board; needs --host), "
                        "fleet (default model)")
    p.add_argument("--cost-model", default="xgb", help="search strategy: random, grid, xgb or mlp (default xgb)")
    p.add_argument("--log", required=True, help="AutoTVM log to append every measurement to")
    p.add_argument("--png", help="write the tuning curve (best GOPS vs trials) to this PNG")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch", type=int, default=4, help="configurations per model round (default 4)")
    p.add_argument("--emulator", help="with --measurer board: a served board emulator instead of the board")
    p.add_argument("--host", help="with --measurer rpc: the server's URL (tcp+tls://HOST:PORT, ssh://USER@HOST)")
    p.add_argument("--token-file", help="with --measurer rpc: file holding the server's token")
    p.add_argument("--cafile", help="with --measurer rpc over tcp+tls: the server's certificate")
    f = p.add_argument_group("fleet measurer (Dask distributed, the fleet extra)")
    f.add_argument("--scheduler", help="scheduler of a `vta fleet worker` cluster (default: a local cluster of "
                                       "simulator workers)")
    f.add_argument("--tls-ca-file", help="with --scheduler: CA certificate the cluster trusts (PEM)")
    f.add_argument("--tls-cert", help="with --scheduler: this client's certificate (PEM)")
    f.add_argument("--tls-key", help="with --scheduler: this client's private key (PEM)")
    f.add_argument("--execute", action="store_true",
                   help="run each configuration on a worker's device and check its output (default: timing only)")
    p.set_defaults(func=_cmd_tune)
