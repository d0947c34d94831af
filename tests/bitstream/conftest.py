"""Fixtures for the bitstream tests: board configurations, a private cache and a loopback HTTP server."""

from __future__ import annotations

import http.server
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.driver.fake_pynq import FakePynq
from vta.config import Environment, load_config


@pytest.fixture
def pynq_env() -> Environment:
    """The released Pynq configuration (pynq/0.0.2/1x16_i8w8a32_15_15_18_17.bit)."""
    return load_config(target="pynq")


@pytest.fixture
def user_env(pynq_env) -> Environment:
    """A Pynq configuration that was never released (2x16_...): a user build."""
    return pynq_env.replace(LOG_BATCH=1)


@pytest.fixture
def vta_cache(tmp_path, monkeypatch) -> Path:
    """A private cache root, set as VTA_CACHE_PATH."""
    root = tmp_path / "cache"
    monkeypatch.setenv("VTA_CACHE_PATH", str(root))
    return root


@pytest.fixture
def fake_pynq(monkeypatch):
    """The strict pynq fake (tests/driver/fake_pynq.py), recording what it was asked to program."""
    module = FakePynq()
    monkeypatch.setitem(sys.modules, "pynq", module)
    return module


@dataclass
class Served:
    """Files under ``root`` served at ``url``; ``status`` forces an HTTP error for a request path."""

    root: Path
    url: str = ""
    requests: list[str] = field(default_factory=list)
    status: dict[str, int] = field(default_factory=dict)

    def put(self, relpath: str, blob: bytes) -> None:
        path = self.root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(blob)


@pytest.fixture
def served(tmp_path, monkeypatch):
    """An http.server on 127.0.0.1 (port 0) in a thread, with proxies disabled for loopback."""
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    docroot = tmp_path / "srv"
    state = Served(docroot / "bitstreams")
    state.root.mkdir(parents=True)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(docroot), **kwargs)

        def do_GET(self):
            state.requests.append(self.path)
            if self.path in state.status:
                self.send_error(state.status[self.path])
                return
            super().do_GET()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/bitstreams"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
