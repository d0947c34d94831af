"""Every code block of README.md and docs/*.md runs, so the documentation cannot drift from the code.

The rule (also stated in the README, section "The command line"):
- ```python blocks run, in order, in one namespace per file (a later block may use an earlier one's names).
- ```sh blocks: each line is one command. ``vta ...`` commands (also after ``&&``, after ``NAME=value``
  environment assignments) run with the installed command line in a scratch folder and must exit 0, or
  with the code a trailing ``# exit N`` states. ``../shared/vectors`` means the golden vectors wherever
  the tests found them. Other commands (``pip``, ``python -m pytest``) are how this suite got here; they
  are not run.
- A block preceded by ``<!-- parse only: REASON -->`` is only parsed: each ``vta`` command must be
  accepted by the argument parser (the reason says why it does not run, e.g. it serves until Ctrl-C).
- ```text blocks are synopses or output, not run. A fence without a language is an error.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import VECTORS

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LANGUAGES = ("python", "sh", "text")
_PARSE_ONLY = re.compile(r"^<!-- parse only: .+ -->$")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # of the opening fence, 1-based
    language: str
    code: str
    parse_only: bool

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def blocks(path: Path) -> list[Block]:
    """The fenced code blocks of a Markdown file."""
    out, lines, i = [], path.read_text().splitlines(), 0
    while i < len(lines):
        if lines[i].startswith("```"):
            start, language = i, lines[i][3:].strip()
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            parse_only = start > 0 and bool(_PARSE_ONLY.match(lines[start - 1].strip()))
            out.append(Block(path, start + 1, language, "\n".join(lines[start + 1:end]), parse_only))
            i = end
        i += 1
    return out


ALL = [b for p in DOCS for b in blocks(p)]


def test_no_document_cites_the_unshipped_spec():
    """The reference spec is not shipped with the package: a document states the rule or links upstream."""
    cites = [f"{p.relative_to(ROOT)}:{n}: {line.strip()}" for p in DOCS
             for n, line in enumerate(p.read_text().splitlines(), 1) if "§" in line]
    assert cites == []


def test_every_block_declares_a_known_language():
    assert [b.where for b in ALL if b.language not in LANGUAGES] == []
    assert sum(b.language == "python" for b in ALL) >= 5 and sum(b.language == "sh" for b in ALL) >= 3


@pytest.mark.parametrize("path", [p for p in DOCS if any(b.language == "python" for b in blocks(p))],
                         ids=lambda p: p.name)
def test_python_blocks_run(path, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__docs__"}
    for b in blocks(path):
        if b.language != "python" or b.parse_only:
            continue
        try:
            exec(compile(b.code, b.where, "exec"), namespace)
        except Exception as e:
            pytest.fail(f"{b.where}: {type(e).__name__}: {e}")


@dataclass(frozen=True)
class Command:
    env: dict[str, str]
    argv: list[str]
    exit_code: int
    where: str


def commands(b: Block) -> list[Command]:
    """The ``vta`` commands of an sh block."""
    out = []
    for n, line in enumerate(b.code.splitlines(), start=b.line + 1):
        text, _, comment = line.partition("#")
        expected = re.match(r"\s*exit (\d+)", comment)
        for part in text.split("&&"):
            words = shlex.split(part.strip().rstrip("&").replace("../shared/vectors", str(VECTORS)))
            env = {}
            while words and re.match(r"^[A-Z_]+=", words[0]):
                key, _, value = words.pop(0).partition("=")
                env[key] = value
            if words and words[0] == "vta":
                out.append(Command(env, words[1:], int(expected.group(1)) if expected else 0,
                                   f"{b.path.relative_to(ROOT)}:{n}"))
    return out


SH = [(b, c) for b in ALL if b.language == "sh" for c in commands(b)]


def test_sh_blocks_name_vta_commands():
    assert len([c for b, c in SH if not b.parse_only]) >= 8


@pytest.mark.parametrize("block,command", SH, ids=[f"{c.where} vta {' '.join(c.argv)[:40]}" for _, c in SH])
def test_sh_commands(block, command, tmp_path, vectors_dir):
    from vta.cli import build_parser

    if block.parse_only:
        build_parser().parse_args(command.argv)  # SystemExit(2) on an unknown command or option
        return
    env = {**os.environ, **command.env}
    r = subprocess.run([sys.executable, "-m", "vta.cli", *command.argv], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == command.exit_code, f"{command.where}: {r.stderr or r.stdout[-500:]}"
