"""docs/board.md: every command it gives is run here, as a dry run of the board script it names, or
is one of the commands those dry runs print (what the scripts would run on the board)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess

from tests.board_scripts.conftest import ROOT, SCRIPTS

DOC = ROOT / "docs" / "board.md"
VENV_BIN = "/usr/local/share/pynq-venv/bin/"  # a stock image's, as the dry runs below print them
CHECKOUT = "/home/xilinx/pynq-vta"  # where the page puts the checkout


def _blocks() -> list[str]:
    """The command lines of the page's ```sh blocks."""
    lines, inside = [], False
    for line in DOC.read_text().splitlines():
        if line.startswith("```"):
            inside = line == "```sh"
        elif inside and line.strip():
            lines.append(line.strip())
    return lines


def _dry_run(script: str, args: list[str]) -> list[str]:
    """The commands a board script prints in a dry run with a stock image's paths (nothing overridden)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYNQ_VTA_", "VTA_"))}
    proc = subprocess.run(["bash", str(SCRIPTS / script), *args, "--dry-run"], env=env, capture_output=True, text=True,
                          cwd="/")
    assert proc.returncode == 0, (script, args, proc.stderr)
    return [line[2:].replace(str(ROOT), CHECKOUT) for line in proc.stdout.splitlines() if line.startswith("+ ")]


def _as_printed(command: str) -> str:
    """A command of the page as the scripts print it: `vta` and `pip` are the image environment's."""
    if command.startswith("vta "):
        return VENV_BIN + command
    if command.startswith("pip install "):
        return f"{VENV_BIN}python3 -m pip install --disable-pip-version-check {command.removeprefix('pip install ')}"
    return command


def test_every_command_of_the_board_page_is_exercised_by_a_dry_run():
    commands = _blocks()
    scripts = [c for c in commands if c.startswith("sudo bash pynq-vta/board_scripts/")]
    others = [c for c in commands if c not in scripts]
    assert len(scripts) == 9 and others == ["sudo -i vta info", "sudo -i vta selftest"]
    printed = set()
    for command in scripts:
        words = shlex.split(command)
        script = words[2].removeprefix("pynq-vta/board_scripts/")
        printed.update(_dry_run(script, [w for w in words[3:] if w != "--dry-run"]))
    # `sudo -i` runs the command in root's login shell, where the image activates its environment.
    missing = [c for c in others if _as_printed(c.removeprefix("sudo -i ")) not in printed]
    assert missing == []
    # The commands the page names in its text, e.g. the steps of install.sh.
    prose = re.sub(r"^```.*?^```", "", DOC.read_text(), flags=re.S | re.M)
    inline = [c for c in re.findall(r"`([^`]+)`", prose) if c.startswith(("vta ", "pip install "))]
    assert len(inline) >= 6
    missing = [c for c in inline if _as_printed(c) not in printed]
    assert missing == []
