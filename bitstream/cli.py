"""``vta bitstream list|verify|fetch`` and ``vta program``: the bitstream cache from the command line."""

from __future__ import annotations

import argparse
from pathlib import Path

from vta.errors import BitstreamError

__all__ = ["register"]

# Shown in --help without importing the store (and http.client with it) to build the parser.
_URL_HELP = "base URL of the distribution (default: the vta-distro bitstreams on GitHub)"


def _file_env(path: str | None = None) -> tuple[object, str]:
    """The configuration to check a file against, and a note when it is not the active one.

    A target without FPGA bitstreams (sim, tsim) has the same hardware parameters as the board it
    models, so a file is checked against that configuration with TARGET set to the board whose
    file type it is (.rbf: de10nano, else pynq) instead of being refused.
    """
    from vta.bitstream.manifest import extension_for
    from vta.config import get_env

    env = get_env()
    try:
        extension_for(env.TARGET)
    except BitstreamError:
        board = "de10nano" if path is not None and Path(path).suffix == ".rbf" else "pynq"
        return env.replace(TARGET=board), (f"(TARGET={env.TARGET} has no FPGA bitstream: checked against the same "
                                           f"configuration with TARGET={board})")
    return env, ""


def _cmd_list(args: argparse.Namespace) -> int:
    from vta.bitstream.manifest import RELEASES
    from vta.bitstream.store import release_path
    from vta.config import get_env

    env = get_env()
    active = (env.TARGET, env.HW_VER, env.BITSTREAM)
    print(f"  {'TARGET':<9} {'HW_VER':<7} {'FILE':<50} {'BYTES':>8}  {'BUILT':<19}  SHA256")
    for r in RELEASES:
        mark = "*" if (r.target, r.hw_ver, r.name) == active else " "
        built = f"{r.date} {r.time}" if r.date else "-"
        cached = "  cached" if release_path(r).exists() else ""
        print(f"{mark} {r.target:<9} {r.hw_ver:<7} {r.filename:<50} {r.size:>8}  {built:<19}  {r.sha256[:16]}{cached}")
    print(f"(* = the active configuration, TARGET={env.TARGET} HW_VER={env.HW_VER}; cached = in the local cache)")
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from vta.bitstream.store import verify

    if args.path is not None and not Path(args.path).is_file():
        what = "is a folder, not a file" if Path(args.path).is_dir() else "does not exist"
        raise BitstreamError(f"{args.path} {what}")
    env, note = _file_env(args.path)
    v = verify(args.path, env)
    if note:
        print(note)
    what = f"the release {v.record.key}" if v.record else "a user build (this configuration was never released)"
    print(f"ok: {v.path} is {what}")
    print(f"  {v.size} bytes, sha256 {v.sha256}")
    if v.header is not None:
        h = v.header
        print(f"  design {h.design}, part {h.part}, built {h.date} {h.time} with {h.tool_version or 'unknown tools'}")
    return 0


def _cmd_fetch(args: argparse.Namespace) -> int:
    from vta.bitstream.store import DEFAULT_TIMEOUT_S, DISTRO_URL, check_base_url, fetch

    url = check_base_url(args.url or DISTRO_URL)  # before the configuration note; fetch checks it again
    timeout = DEFAULT_TIMEOUT_S if args.timeout is None else args.timeout
    env, note = _file_env()
    if note:
        print(note.replace("checked against", "fetching the release of"))
    print(fetch(env, base_url=url, force=args.force, timeout=timeout))
    return 0


def _cmd_program(args: argparse.Namespace) -> int:
    from vta.bitstream.program import program

    print(f"FPGA programmed with {program(args.path, lock=args.lock)}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from vta.driver.lock import DEFAULT_LOCK_PATH

    p = sub.add_parser("bitstream", help="released FPGA bitstreams: list them, verify a file, fetch into the cache")
    bsub = p.add_subparsers(dest="bitstream_command", required=True, metavar="BITSTREAM_COMMAND")
    s = bsub.add_parser("list", help="list the released bitstreams, marking the active configuration's and cached ones")
    s.set_defaults(func=_cmd_list)
    s = bsub.add_parser("verify", help="check a bitstream's name, HW_VER, size, sha256 and header against the config")
    s.add_argument("path", nargs="?", help="bitstream file (default: the cached one for the active configuration)")
    s.set_defaults(func=_cmd_verify)
    s = bsub.add_parser("fetch", help="download the active configuration's release into the cache, checksum-verified")
    s.add_argument("--url", help=_URL_HELP)
    s.add_argument("--force", action="store_true", help="download even if a verified copy is cached")
    s.add_argument("--timeout", type=float, help="seconds to wait for the server (default 30)")
    s.set_defaults(func=_cmd_fetch)
    p = sub.add_parser("program", help="verify a bitstream and program the FPGA with it (needs a Pynq board)")
    p.add_argument("path", nargs="?", help="bitstream file (default: the cached one for the active configuration)")
    p.add_argument("--lock", default=DEFAULT_LOCK_PATH,
                   help=f"device lock held while programming; busy if a runtime owns it (default {DEFAULT_LOCK_PATH})")
    p.set_defaults(func=_cmd_program)
