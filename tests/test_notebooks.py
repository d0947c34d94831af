"""The notebooks in notebooks/: each runs top to bottom on the simulator, none is committed with outputs,
and PYNQ's ``pynq get-notebooks`` finds them in the installed package through the ``pynq.notebooks``
entry point (resolved here the way PYNQ does, without pynq installed). Each notebook prints a line only
after it has checked its results (against numpy, the int8 CPU reference or the local simulator): the
tests look for that line, the backend line and the pictures.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
KERNEL = "pynq-vta-tests"


@dataclass(frozen=True)
class Expect:
    pictures: int  # PNG outputs it draws at least
    checked: str  # printed only after the notebook's own check passed
    first: str = "backend: sim -- VTA_TARGET"  # its first output, on the simulator
    board: bool = True  # its backend cell is `rt = Runtime()`, so it also runs on the emulated board


# Every notebook, with what it must show: a new notebook gets a line here.
EXPECT = {
    "1-getting-started": Expect(1, "equal numpy's"),
    "2-conv2d-layer": Expect(3, "equal numpy's"),
    "3-tuning-a-layer": Expect(2, "equal numpy's"),
    "4-whole-network": Expect(2, "equal the int8 CPU reference's"),
    # the host's notebook: its backend is rpc, to a `vta rpc serve` it starts or the one VTA_RPC_URL names
    "5-remote-board": Expect(1, "equal the local simulator's, bit for bit",
                             first="backend: rpc -- no board named (VTA_RPC_URL is not set), so this notebook started "
                                   "`vta rpc serve --emulate` on 127.0.0.1:", board=False),
}
ON_BOARD = [p for p in NOTEBOOKS if EXPECT[p.stem].board]
PLOT_ADVICE = 'pip install ".[plot]" from the pynq-vta checkout'
BACKEND_LINE = "rt = Runtime()"  # in each notebook's first code cell: the board on a board, else the simulator
# PYNQ's ExtensionsManager.extension_path: the entry point names a package, its folder is __path__[0].
RESOLVE = """\
import importlib.metadata, json, pathlib, sys
found = [ep for ep in importlib.metadata.entry_points(group="pynq.notebooks") if ep.name == "pynq-vta"
         and pathlib.Path(ep.dist.locate_file("")).resolve() == pathlib.Path(sys.argv[1]).resolve()]
module = found[0].load()
print(json.dumps({"count": len(found), "value": found[0].value, "folder": [p for p in module.__path__][0],
                  "pynq_imported": "pynq" in sys.modules}))
"""


@pytest.fixture
def kernel(tmp_path, monkeypatch) -> str:
    """A Jupyter kernel running this interpreter (the one pynq-vta is installed in), on the simulator."""
    spec = tmp_path / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": KERNEL, "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("VTA_TARGET", "sim")
    monkeypatch.delenv("VTA_RPC_URL", raising=False)  # the remote notebook then serves its own emulated board
    return KERNEL


def execute(nb: nbformat.NotebookNode, kernel: str, cwd: Path) -> nbformat.NotebookNode:
    """Run every cell in a fresh kernel; a cell that raises raises CellExecutionError naming it."""
    NotebookClient(nb, timeout=300, kernel_name=kernel, resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def outputs(nb: nbformat.NotebookNode) -> list[dict]:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]


def text(nb: nbformat.NotebookNode) -> str:
    return "".join(o.get("text", "") for o in outputs(nb))


def test_every_notebook_is_listed():
    assert [p.stem for p in NOTEBOOKS] == sorted(EXPECT)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebooks_have_no_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert dirty == [], f"{path.name}: cells {dirty} have outputs; clear them before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_on_the_simulator(path, kernel, tmp_path):
    expect = EXPECT[path.stem]
    nb = execute(nbformat.read(path, as_version=4), kernel, tmp_path)
    first = outputs(nb)[0]
    assert first.get("text", "").startswith(expect.first), first
    assert expect.checked in text(nb)
    assert sum("image/png" in o.get("data", {}) for o in outputs(nb)) >= expect.pictures
    assert list(tmp_path.iterdir()) == [tmp_path / "jupyter"]  # the notebook left no files behind


@pytest.mark.parametrize("path", ON_BOARD, ids=lambda p: p.stem)
def test_notebook_runs_on_the_emulated_board(path, kernel, tmp_path, board):
    # What the notebook does on a Pynq board, with the board backend's driver on the emulated board: the
    # backend cell's `Runtime()` (the board's, on a board) is given the emulator explicitly.
    nb = nbformat.read(path, as_version=4)
    (cell,) = [c for c in nb.cells if c.cell_type == "code" and BACKEND_LINE in c.source]
    cell.source = cell.source.replace(BACKEND_LINE, "from vta.runtime.backends.board import BoardBackend\n"
                                      f"rt = Runtime(BoardBackend(emulator={str(board.path)!r}))")
    board.reset()
    runs = board.runs
    execute(nb, kernel, tmp_path)
    assert outputs(nb)[0]["text"].startswith("backend: pynq -- ")
    assert "on the pynq backend" in text(nb) and EXPECT[path.stem].checked in text(nb)
    assert board.runs > runs


def test_the_remote_notebook_uses_the_board_the_environment_names(kernel, tmp_path, board, monkeypatch):
    # A board serving with a token, named by VTA_RPC_URL and VTA_RPC_TOKEN_FILE: the notebook starts no server.
    from vta.runtime.rpc.server import ServerConfig, TcpServer

    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "token").write_text("a-long-random-notebook-token\n")
    server = TcpServer(ServerConfig(mode="emulate", emulator=board, token="a-long-random-notebook-token")).start()
    url = f"tcp://127.0.0.1:{server.address[1]}"
    monkeypatch.setenv("VTA_RPC_URL", url)
    monkeypatch.setenv("VTA_RPC_TOKEN_FILE", str(secrets / "token"))
    board.reset()
    runs = board.runs
    work = tmp_path / "work"
    work.mkdir()
    try:
        nb = execute(nbformat.read(ROOT / "notebooks" / "5-remote-board.ipynb", as_version=4), kernel, work)
    finally:
        server.stop()
    assert outputs(nb)[0]["text"].startswith(f"backend: rpc -- the board at {url} (VTA_RPC_URL); the server runs "
                                             "an emulated Pynq board")
    assert "stopped the local" not in text(nb) and EXPECT["5-remote-board"].checked in text(nb)
    assert board.runs > runs
    assert list(work.iterdir()) == []


# ssh as the rpc backend runs it (ssh -T -o BatchMode=yes [-p PORT] TARGET COMMAND...), here on this machine:
# like sshd, it joins the command words with spaces and hands the line to a shell.
FAKE_SSH = """#!/bin/sh
while [ $# -gt 0 ]; do case "$1" in -T) shift ;; -o|-p) shift 2 ;; *) break ;; esac; done
shift
exec sh -c "$*"
"""


def test_the_remote_notebook_runs_the_command_named_over_ssh(kernel, tmp_path, monkeypatch):
    # docs/host.md's recipe: VTA_RPC_URL=ssh://root@pynq and the server started in a login shell on the board.
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "ssh").write_text(FAKE_SSH)
    (tools / "ssh").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("VTA_RPC_URL", "ssh://root@pynq")
    monkeypatch.setenv("VTA_RPC_COMMAND", f"bash -lc '{sys.executable} -m vta.cli rpc serve --stdio --sim "
                                          f"--lock {tmp_path / 'tools' / 'device.lock'}'")
    work = tmp_path / "work"
    work.mkdir()
    nb = execute(nbformat.read(ROOT / "notebooks" / "5-remote-board.ipynb", as_version=4), kernel, work)
    assert outputs(nb)[0]["text"].startswith("backend: rpc -- the board at ssh://root@pynq (VTA_RPC_URL); the server "
                                             "runs the simulator")
    assert EXPECT["5-remote-board"].checked in text(nb)
    assert list(work.iterdir()) == []


@pytest.fixture
def no_matplotlib(tmp_path, monkeypatch) -> None:
    """The kernel's ``import matplotlib`` fails as it does where matplotlib is not installed."""
    shim = tmp_path / "no-matplotlib" / "matplotlib"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text('raise ModuleNotFoundError("No module named matplotlib", name="matplotlib")\n')
    monkeypatch.setenv("PYTHONPATH", str(shim.parent))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_without_matplotlib_a_notebook_says_what_to_install(path, kernel, no_matplotlib, tmp_path):
    # It stops in its first code cell, before any long computation, naming the extra to install.
    nb = nbformat.read(path, as_version=4)
    with pytest.raises(CellExecutionError, match=re.escape(PLOT_ADVICE)) as failure:
        execute(nb, kernel, tmp_path)
    assert "ModuleNotFoundError" in str(failure.value)
    first = next(c for c in nb.cells if c.cell_type == "code")
    assert any(o.get("output_type") == "error" for o in first.outputs)


def test_a_notebook_that_raises_fails(kernel, tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1"),
                                         nbformat.v4.new_code_cell("raise ValueError('cell two fails')")])
    with pytest.raises(CellExecutionError, match="cell two fails"):
        execute(nb, kernel, tmp_path)


def resolve(site: Path) -> dict:
    """What ``pynq get-notebooks`` would copy, for the pynq-vta distribution installed in ``site``.

    Run from ``site``, so that a package unpacked there comes first on ``sys.path``.
    """
    done = subprocess.run([sys.executable, "-c", RESOLVE, str(site)], capture_output=True, text=True, timeout=60,
                          cwd=site)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_without_xgboost_the_tuning_notebook_skips_the_tree_model_and_says_what_to_install(kernel, tmp_path,
                                                                                          monkeypatch):
    # As on a board with no XGBoost wheel: the notebook up to its tuning cell, xgboost failing to import.
    shim = tmp_path / "no-xgboost" / "xgboost"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text('raise ModuleNotFoundError("No module named xgboost", name="xgboost")\n')
    monkeypatch.setenv("PYTHONPATH", str(shim.parent))
    nb = nbformat.read(ROOT / "notebooks" / "3-tuning-a-layer.ipynb", as_version=4)
    last = next(i for i, c in enumerate(nb.cells) if "Tuner(" in c.source)
    nb.cells = nb.cells[:last + 1]
    out = text(execute(nb, kernel, tmp_path))
    assert 'tree-based (XGBoost): skipped -- the tree-based cost model needs XGBoost: pip install ".[tune]"' in out
    assert "random " in out and "neural (MLP) " in out


def test_the_pynq_notebooks_entry_point_resolves_to_the_notebooks():
    # The installed pynq-vta (editable in the test environment, so its notebooks folder is the checkout's).
    info = resolve(Path(importlib.metadata.distribution("pynq-vta").locate_file("")))
    assert info["count"] == 1 and info["value"] == "vta.notebooks" and not info["pynq_imported"]
    folder = Path(info["folder"])
    assert sorted(p.name for p in folder.glob("*.ipynb")) == [p.name for p in NOTEBOOKS]


@pytest.mark.slow
def test_the_wheel_ships_the_notebooks_and_its_entry_point_finds_them(tmp_path):
    src = tmp_path / "pynq-vta"  # a copy, so that the build leaves nothing in the checkout
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "*.so",
                                                              "__pycache__", ".*_cache", ".hypothesis"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path / "dist"),
                    str(src)], check=True, capture_output=True, timeout=600)
    (wheel,) = (tmp_path / "dist").glob("pynq_vta-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)
    info = resolve(site)
    folder = Path(info["folder"])
    assert info["count"] == 1 and folder == site / "vta" / "notebooks" and not info["pynq_imported"]
    assert sorted(p.name for p in folder.glob("*.ipynb")) == [p.name for p in NOTEBOOKS]
