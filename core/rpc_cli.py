"""``vta rpc serve`` and ``vta fleet worker``: offer this machine's device (board, emulated board or
simulator) to remote runtimes, or to a Dask cluster.

It lives at the package root, not in ``vta.runtime.rpc``, because finding a plugin imports its
package and ``vta.runtime`` is heavy: ``vta --help`` must stay fast. The server is imported only
when ``vta rpc serve`` runs.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from vta.errors import VTAError

if TYPE_CHECKING:
    import ssl

    from vta.runtime.rpc.server import ServerConfig

__all__ = ["register"]

MIN_TOKEN_CHARS = 16


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("rpc", help="remote devices: serve this board to runtimes on other machines")
    rpc = p.add_subparsers(dest="rpc_command", required=True, metavar="COMMAND")
    s = rpc.add_parser("serve", help="serve one device; data only crosses the wire (see docs/remote.md)")
    what = s.add_mutually_exclusive_group()
    what.add_argument("--sim", action="store_true", help="serve the simulator instead of the board")
    what.add_argument("--emulate", action="store_true", help="serve a freshly started emulated board")
    s.add_argument("--stdio", action="store_true",
                   help="one session on stdin/stdout, for `ssh board vta rpc serve --stdio` (no open port)")
    s.add_argument("--host", default="127.0.0.1", help="address to bind in service mode (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=9091, help="port in service mode (0: any free port; default 9091)")
    s.add_argument("--cert", help="TLS certificate chain (PEM) for service mode")
    s.add_argument("--key", help="TLS private key (PEM) for service mode")
    s.add_argument("--token-file", help=f"file holding the pre-shared client token (at least {MIN_TOKEN_CHARS} "
                                        "characters)")
    s.add_argument("--insecure-loopback", action="store_true",
                   help="service mode without TLS, allowed only when binding a loopback address (tests, benchmarks)")
    s.add_argument("--lock", help="device lock file (default: the board's; the simulator has its own)")
    s.add_argument("--idle-s", type=float, default=300.0, help="drop a client silent this long (default 300)")
    s.add_argument("--frame-s", type=float, default=10.0, help="drop a client whose frame takes longer (default 10)")
    s.add_argument("--max-run-s", type=float, default=60.0, help="cap on a run's timeout (default 60)")
    s.set_defaults(func=_cmd_serve)
    p = sub.add_parser("fleet", help="pool devices for tuning and batch runs with Dask distributed")
    fleet = p.add_subparsers(dest="fleet_command", required=True, metavar="COMMAND")
    w = fleet.add_parser("worker", help="join a Dask scheduler as a worker owning this machine's device")
    w.add_argument("scheduler", help="scheduler address, e.g. tls://192.168.2.1:8786")
    what = w.add_mutually_exclusive_group()
    what.add_argument("--sim", action="store_true", help="offer the simulator instead of the board")
    what.add_argument("--emulate", action="store_true", help="offer a freshly started emulated board")
    w.add_argument("--tls-ca-file", required=True, help="CA certificate the cluster trusts (PEM)")
    w.add_argument("--tls-cert", required=True, help="this worker's certificate (PEM)")
    w.add_argument("--tls-key", required=True, help="this worker's private key (PEM)")
    w.set_defaults(func=_cmd_fleet_worker)


def _cmd_serve(args: argparse.Namespace) -> int:
    from vta.runtime.rpc.server import ServerConfig

    # over SSH the log reaches the user's terminal: only warnings there
    logging.basicConfig(level=logging.WARNING if args.stdio else logging.INFO, stream=sys.stderr,
                        format="vta rpc: %(message)s")
    mode = "sim" if args.sim else "emulate" if args.emulate else "pynq"
    config = ServerConfig(mode=mode, lock_path=args.lock, idle_s=args.idle_s, frame_s=args.frame_s,
                          max_run_s=args.max_run_s)
    if args.stdio:
        return _with_emulator(config, lambda: _serve_stdio(config))
    tls = None
    if not args.insecure_loopback:
        if not (args.cert and args.key and args.token_file):
            raise VTAError("service mode needs --cert, --key and --token-file (TLS and a pre-shared token); "
                           "or use --stdio over SSH")
        config.token = _read_token(args.token_file)
        tls = _tls_context(args.cert, args.key)
    elif not ipaddress.ip_address(args.host).is_loopback:
        raise VTAError(f"--insecure-loopback binds loopback addresses only, not {args.host}")
    elif args.token_file:
        config.token = _read_token(args.token_file)
    else:
        config.token = ""
    return _with_emulator(config, lambda: _serve_tcp(config, args.host, args.port, tls))


def _cmd_fleet_worker(args: argparse.Namespace) -> int:
    import asyncio

    from vta.runtime.fleet import QUIET_CONFIG, RESOURCE, DevicePlugin, require_distributed

    distributed = require_distributed()
    import dask
    from distributed.security import Security

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="vta fleet: %(message)s")
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))  # unwind: the plugin closes the device
    security = Security(tls_ca_file=args.tls_ca_file, tls_worker_cert=args.tls_cert, tls_worker_key=args.tls_key,
                        tls_client_cert=args.tls_cert, tls_client_key=args.tls_key, require_encryption=True)
    plugin = DevicePlugin("sim" if args.sim else "emulate" if args.emulate else "pynq")

    async def run() -> None:
        async with distributed.Worker(args.scheduler, nthreads=1, resources=RESOURCE, security=security,
                                      plugins={plugin}) as worker:
            print(f"vta fleet: worker {worker.address} offers one {plugin.mode} device", flush=True)
            await worker.finished()

    with dask.config.set(QUIET_CONFIG):
        asyncio.run(run())
    return 0


def _with_emulator(config: ServerConfig, serve: Callable[[], int]) -> int:
    if config.mode != "emulate":
        return serve()
    from vta.driver.emulated import EmulatedBoard

    # SIGTERM (systemctl stop, kill) must unwind to the finally below, which removes the emulator's DRAM image
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    board = EmulatedBoard.start()
    config.emulator = board
    try:
        return serve()
    finally:
        board.stop()


def _serve_stdio(config: ServerConfig) -> int:
    from vta.runtime.rpc.channel import PipeChannel
    from vta.runtime.rpc.server import serve_channel

    rfd, wfd = os.dup(0), os.dup(1)
    os.dup2(2, 1)  # anything printed by accident goes to stderr, never into the protocol stream
    failed: list[str] = []
    serve_channel(PipeChannel(rfd, wfd), config, "stdio", authenticated=True, on_unrecoverable=failed.append)
    return _exit_status(failed[0] if failed else None)


def _serve_tcp(config: ServerConfig, host: str, port: int, tls: ssl.SSLContext | None) -> int:
    from vta.runtime.rpc.server import TcpServer

    server = TcpServer(config, host, port, tls)
    print(f"vta rpc: serving {config.mode} on {server.address[0]}:{server.address[1]}"
          f"{' with TLS' if tls else ' (no TLS, loopback only)'}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.sock.close()
    return _exit_status(server.unrecoverable)


def _exit_status(unrecoverable: str | None) -> int:
    """0, or 3 after a device that could not be recovered: a supervisor (systemd) restarts and re-programs."""
    if unrecoverable is None:
        return 0
    print(f"vta rpc: stopped serving: {unrecoverable}", file=sys.stderr, flush=True)
    return 3


def _read_token(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            token = f.read().strip()
    except (OSError, UnicodeDecodeError) as e:
        raise VTAError(f"--token-file {path!r}: cannot read it ({e})") from None
    if len(token) < MIN_TOKEN_CHARS:
        raise VTAError(f"--token-file {path!r}: the token must have at least {MIN_TOKEN_CHARS} characters")
    return token


def _tls_context(cert: str, key: str) -> ssl.SSLContext:
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as e:
        raise VTAError(f"cannot load the TLS certificate {cert!r} and key {key!r}: {e}") from None
    return ctx
