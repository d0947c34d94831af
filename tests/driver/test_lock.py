"""The device lock: one owner, a clear busy error naming the owner, no stale locks."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from vta.driver.lock import DeviceLock
from vta.errors import DeviceBusy, DeviceError


def test_second_owner_gets_busy_with_pid(tmp_path):
    path = tmp_path / "dev.lock"
    busy = rf"^the VTA device is busy: owned by pid {os.getpid()} \(.+\) \(lock {path}\); close that session"
    with DeviceLock(path) as owner, pytest.raises(DeviceBusy, match=busy):
        DeviceLock(path).acquire()
    with DeviceLock(path) as owner:
        owner.describe("running   a\nlong program")
        with pytest.raises(DeviceBusy, match=rf"owned by pid {os.getpid()} \(running a long program\) \(lock"):
            DeviceLock(path).acquire()
    with DeviceLock(path) as again:
        assert again.held


def test_other_process_sees_busy_and_lock_dies_with_owner(tmp_path):
    path = tmp_path / "dev.lock"
    code = ("import sys; from vta.driver.lock import DeviceLock; l = DeviceLock(sys.argv[1]); l.acquire(); "
            "print('locked', flush=True); sys.stdin.readline()")
    owner = subprocess.Popen([sys.executable, "-c", code, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    try:
        assert owner.stdout.readline().strip() == "locked"
        with pytest.raises(DeviceBusy, match=rf"^board is busy: owned by pid {owner.pid} \(-c {path}\) \(lock "):
            DeviceLock(path).acquire("board")
    finally:
        owner.kill()
        owner.wait(10)
    with DeviceLock(path):
        pass


def test_double_acquire_and_unusable_path(tmp_path):
    lock = DeviceLock(tmp_path / "a.lock")
    lock.acquire()
    with pytest.raises(DeviceError, match=r"already held by this DeviceLock$"):
        lock.acquire()
    lock.release()
    lock.release()
    with pytest.raises(DeviceError, match=rf"^cannot open lock file {tmp_path}/missing/x.lock: No such file"):
        DeviceLock(tmp_path / "missing" / "x.lock").acquire()
