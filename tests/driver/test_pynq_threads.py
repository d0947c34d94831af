"""The board opened from a thread of its own, as an rpc session (``vta rpc serve``) or a Dask
worker (``vta fleet worker``) does, against the fake ``pynq`` (tests/driver/fake_pynq.py), which
finds its device the way PYNQ 3.x does."""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Callable

import pytest

from tests.bitstream.synth import make_bit, record_for
from tests.driver.fake_pynq import FakePynq
from vta.config import load_config
from vta.driver.device import BoardDevice


def _in_thread(work: Callable[[], object]) -> object:
    """``work()`` run in a new thread, which has no asyncio event loop: its result, or the exception it raised."""
    out: list[object] = []

    def run() -> None:
        try:
            out.append(work())
        except BaseException as e:  # handed to the test
            out.append(e)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    assert not thread.is_alive()
    return out[0]


@pytest.fixture
def fake(monkeypatch, tmp_path):
    """The fake with a bitstream on the FPGA, programmed by another process (the service's root step)."""
    module = FakePynq()
    module.loaded = str(tmp_path / "earlier.bit")
    monkeypatch.setitem(sys.modules, "pynq", module)
    return module


def test_pynq_cannot_find_its_device_from_a_thread_without_an_event_loop(fake):
    """What PYNQ 3.x does (the fake follows pynq/pl_server/device.py and xrt_device.py)."""
    error = _in_thread(lambda: fake.allocate((4096,), "u1"))
    assert isinstance(error, RuntimeError) and str(error).startswith("There is no current event loop in thread")
    with pytest.raises(RuntimeError, match=r"^No Devices Found$"):
        fake.allocate((4096,), "u1")  # and it stays that way for the whole process


def test_the_board_opens_from_a_session_thread(fake, tmp_path):
    env = load_config(target="pynq")
    blob = make_bit()
    (tmp_path / f"{env.BITSTREAM}.bit").write_bytes(blob)
    mem = tmp_path / "mem"
    with open(mem, "wb") as f:
        f.truncate(0x44000000)

    def session() -> tuple[int, object]:
        with BoardDevice.open_board(env, mem_path=str(mem), lock_path=tmp_path / "lock", program=False,
                                    expected=record_for(blob, env)) as dev:
            buf = dev.alloc(4096)
            try:  # the thread is left without an event loop, as it was found
                asyncio.get_event_loop_policy().get_event_loop()
            except RuntimeError:
                return buf.phys_addr
            raise AssertionError("the session thread was left with an event loop")

    for _ in range(2):  # and the next session, in another thread
        phys = _in_thread(session)
        assert isinstance(phys, int) and fake.base <= phys < fake.base + fake.size
