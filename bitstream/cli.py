"""``vta bitstream list|verify|fetch`` and ``vta program``: the bitstream cache from the command line."""

from __future__ import annotations

import argparse

__all__ = ["register"]


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

    v = verify(args.path)
    what = f"the release {v.record.key}" if v.record else "a user build (this configuration was never released)"
    print(f"ok: {v.path} is {what}")
    print(f"  {v.size} bytes, sha256 {v.sha256}")
    if v.header is not None:
        h = v.header
        print(f"  design {h.design}, part {h.part}, built {h.date} {h.time} with {h.tool_version or 'unknown tools'}")
    return 0


def _cmd_fetch(args: argparse.Namespace) -> int:
    from vta.bitstream.store import fetch

    print(fetch(base_url=args.url, force=args.force, timeout=args.timeout))
    return 0


def _cmd_program(args: argparse.Namespace) -> int:
    from vta.bitstream.program import program

    print(f"FPGA programmed with {program(args.path, lock=args.lock)}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from vta.bitstream.store import DEFAULT_TIMEOUT_S, DISTRO_URL
    from vta.driver.lock import DEFAULT_LOCK_PATH

    p = sub.add_parser("bitstream", help="released FPGA bitstreams: list them, verify a file, fetch into the cache")
    bsub = p.add_subparsers(dest="bitstream_command", required=True, metavar="BITSTREAM_COMMAND")
    s = bsub.add_parser("list", help="list the released bitstreams, marking the active configuration's and cached ones")
    s.set_defaults(func=_cmd_list)
    s = bsub.add_parser("verify", help="check a bitstream's name, HW_VER, size, sha256 and header against the config")
    s.add_argument("path", nargs="?", help="bitstream file (default: the cached one for the active configuration)")
    s.set_defaults(func=_cmd_verify)
    s = bsub.add_parser("fetch", help="download the active configuration's release into the cache, checksum-verified")
    s.add_argument("--url", default=DISTRO_URL, help=f"base URL of the distribution (default {DISTRO_URL})")
    s.add_argument("--force", action="store_true", help="download even if a verified copy is cached")
    s.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S,
                   help=f"seconds to wait for the server (default {DEFAULT_TIMEOUT_S:g})")
    s.set_defaults(func=_cmd_fetch)
    p = sub.add_parser("program", help="verify a bitstream and program the FPGA with it (needs a Pynq board)")
    p.add_argument("path", nargs="?", help="bitstream file (default: the cached one for the active configuration)")
    p.add_argument("--lock", default=DEFAULT_LOCK_PATH,
                   help=f"device lock held while programming; busy if a runtime owns it (default {DEFAULT_LOCK_PATH})")
    p.set_defaults(func=_cmd_program)
