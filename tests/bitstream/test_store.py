import dataclasses
import hashlib
import re
import socket
import stat
import time

import pytest

from tests.bitstream.synth import make_bit, record_for
from vta.bitstream.store import DISTRO_URL, cache_path, cache_root, check_base_url, fetch, release_path, verify
from vta.errors import BitstreamError, BitstreamMismatch

NAME = "1x16_i8w8a32_15_15_18_17.bit"
REMOTE = f"pynq/0.0.2/{NAME}"


def _files(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) if root.exists() else []


def _put(path, blob):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(blob)
    return path


# --- cache layout ----------------------------------------------------------------------------
def test_default_cache_is_home_vta_cache(tmp_path, monkeypatch, pynq_env):
    monkeypatch.delenv("VTA_CACHE_PATH", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_root() == tmp_path / ".vta_cache"
    assert cache_path(pynq_env) == tmp_path / ".vta_cache" / "pynq" / "0_0_2" / NAME


def test_cache_path_follows_vta_cache_path(vta_cache, pynq_env):
    assert cache_path(pynq_env) == vta_cache / "pynq" / "0_0_2" / NAME
    assert cache_path(pynq_env.replace(HW_VER="0.0.1")) == vta_cache / "pynq" / "0_0_1" / NAME
    de10 = pynq_env.replace(TARGET="de10nano", HW_VER="0.0.1")
    assert cache_path(de10) == vta_cache / "de10nano" / "0_0_1" / "1x16_i8w8a32_15_15_18_17.rbf"


def test_cache_path_for_sim_is_refused(vta_cache, pynq_env):
    with pytest.raises(BitstreamError, match=r"^TARGET='sim' has no FPGA bitstream"):
        cache_path(pynq_env.replace(TARGET="sim"))


def test_distribution_url():
    assert DISTRO_URL == "https://github.com/uwsampl/vta-distro/raw/master/bitstreams"


# --- verify ----------------------------------------------------------------------------------
def test_verify_matching_file(vta_cache, pynq_env):
    blob = make_bit()
    record = record_for(blob, pynq_env)
    path = _put(cache_path(pynq_env), blob)
    v = verify(env=pynq_env, expected=record)
    assert (v.path, v.size, v.sha256, v.record) == (path, len(blob), hashlib.sha256(blob).hexdigest(), record)
    assert (v.header.design, v.header.part, v.header.date) == ("vta_wrapper", "7z020clg484", "2020/06/30")


def test_verify_user_build_checks_name_and_header_only(tmp_path, user_env):
    path = _put(tmp_path / "2x16_i8w8a32_15_15_18_17.bit", make_bit(part="7z020clg400"))
    v = verify(path, user_env)
    assert v.record is None and v.header.part == "7z020clg400"


def test_verify_rbf_has_no_header(tmp_path, pynq_env):
    env = pynq_env.replace(TARGET="de10nano", HW_VER="0.0.1")
    blob = b"intel raw binary"
    record = dataclasses.replace(record_for(blob, env), ext=".rbf", design=None, part=None, data_length=None)
    v = verify(_put(tmp_path / "1x16_i8w8a32_15_15_18_17.rbf", blob), env, expected=record)
    assert v.header is None and v.record == record


def test_wrong_name_is_refused(tmp_path, pynq_env):
    path = _put(tmp_path / "4x8_i8w8a32_15_16_16_18.bit", make_bit())
    with pytest.raises(BitstreamMismatch, match=r"name mismatch: the file is named '4x8_i8w8a32_15_16_16_18\.bit', "
                       r"the active configuration \(TARGET=pynq, HW_VER=0\.0\.2, BITSTREAM=1x16_i8w8a32_15_15_18_17\) "
                       rf"needs '{NAME}'$"):
        verify(path, pynq_env)


def test_wrong_hw_ver_of_expected_record_is_refused(tmp_path, pynq_env):
    blob = make_bit()
    path = _put(tmp_path / NAME, blob)
    with pytest.raises(BitstreamMismatch, match=rf"^the expected record is the release pynq/0\.0\.1/{NAME}, but the "
                       r"active configuration \(TARGET=pynq, HW_VER=0\.0\.2, .*\) needs "
                       rf"pynq/0\.0\.2/{NAME}: HW_VER '0\.0\.1' vs configured '0\.0\.2'$"):
        verify(path, pynq_env, expected=record_for(blob, pynq_env, hw_ver="0.0.1"))


def test_file_of_another_hw_ver_is_recognised(tmp_path, pynq_env):
    """The upstream failure: a 0.0.1 bitstream under the 0.0.2 name; here it is named, not a RecursionError."""
    old, new = make_bit(date="2019/07/25"), make_bit(date="2020/06/30")
    manifest = (record_for(old, pynq_env, hw_ver="0.0.1"), record_for(new, pynq_env))
    path = _put(tmp_path / NAME, old)
    with pytest.raises(BitstreamMismatch, match=rf"^{tmp_path}/{NAME} is the release pynq/0\.0\.1/{NAME}, but the "
                       r"active configuration \(TARGET=pynq, HW_VER=0\.0\.2, .*\) needs .*: "
                       r"HW_VER '0\.0\.1' vs configured '0\.0\.2'$"):
        verify(path, pynq_env, manifest=manifest)
    assert verify(_put(tmp_path / NAME, new), pynq_env, manifest=manifest).record == manifest[1]


def test_real_release_of_another_hw_ver_is_recognised(tmp_path, pynq_env):
    """With the real manifest: whatever the bytes, the 0.0.1 checksum identifies the 0.0.1 release."""
    blob = make_bit()
    fake_release = (record_for(blob, pynq_env, hw_ver="0.0.1", name="4x8_i8w8a32_15_16_16_18"),)
    path = _put(tmp_path / NAME, blob)
    with pytest.raises(BitstreamMismatch, match=r"HW_VER '0\.0\.1' vs configured '0\.0\.2'; "
                       r"name '4x8_i8w8a32_15_16_16_18' vs configured '1x16_i8w8a32_15_15_18_17'$"):
        verify(path, pynq_env, manifest=fake_release)


def test_wrong_checksum_is_refused(tmp_path, pynq_env):
    good = make_bit()
    bad = good[:-1] + b"\0"
    path = _put(tmp_path / NAME, bad)
    record = record_for(good, pynq_env)
    with pytest.raises(BitstreamMismatch, match=rf"checksum mismatch: the file has sha256 "
                       rf"{hashlib.sha256(bad).hexdigest()}, the release pynq/0\.0\.2/{NAME} needed by the active "
                       rf"configuration \(.*\) has sha256 {record.sha256}$"):
        verify(path, pynq_env, expected=record)


def test_synthetic_file_under_the_real_release_name_is_refused(tmp_path, pynq_env):
    path = _put(tmp_path / NAME, make_bit())
    with pytest.raises(BitstreamMismatch, match=r"size mismatch: the file has 1131 bytes, the release "
                       rf"pynq/0\.0\.2/{NAME} needed by .* has 4045671 bytes$"):
        verify(path, pynq_env)


def test_header_mismatch_is_refused(tmp_path, pynq_env):
    blob = make_bit()
    path = _put(tmp_path / NAME, blob)
    with pytest.raises(BitstreamMismatch, match=r"header part mismatch: the file has '7z020clg484', the release "
                       rf"pynq/0\.0\.2/{NAME} has '7z020clg400'$"):
        verify(path, pynq_env, expected=record_for(blob, pynq_env, part="7z020clg400"))


def test_malformed_user_build_is_refused(tmp_path, user_env):
    path = _put(tmp_path / "2x16_i8w8a32_15_15_18_17.bit", make_bit()[:-10])
    with pytest.raises(BitstreamError, match=r"truncated \.bit file: field 'e' declares 1024 data bytes"):
        verify(path, user_env)


def test_missing_file(vta_cache, pynq_env):
    with pytest.raises(BitstreamError, match=rf"^no bitstream file at {vta_cache}/pynq/0_0_2/{NAME}; run "
                       r"`vta bitstream fetch` to download the release for the active configuration"):
        verify(env=pynq_env)


def test_unreadable_file(tmp_path, pynq_env):
    (tmp_path / NAME).mkdir()
    with pytest.raises(BitstreamError, match=rf"^cannot read bitstream file {tmp_path}/{NAME}: "):
        verify(tmp_path / NAME, pynq_env)


# --- fetch -----------------------------------------------------------------------------------
def test_fetch_downloads_verifies_and_renames(vta_cache, served, pynq_env):
    blob = make_bit()
    served.put(REMOTE, blob)
    path = fetch(pynq_env, base_url=served.url, expected=record_for(blob, pynq_env))
    assert path == vta_cache / "pynq" / "0_0_2" / NAME == release_path(record_for(blob, pynq_env))
    assert path.read_bytes() == blob
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert _files(vta_cache) == [f"pynq/0_0_2/{NAME}"]
    assert served.requests == [f"/bitstreams/{REMOTE}"]


def test_fetch_keeps_a_verified_copy(vta_cache, served, pynq_env):
    blob = make_bit()
    record = record_for(blob, pynq_env)
    _put(release_path(record), blob)
    assert fetch(pynq_env, base_url=served.url, expected=record).read_bytes() == blob
    assert served.requests == []


def test_fetch_refuses_a_corrupt_copy_unless_forced(vta_cache, served, pynq_env):
    blob = make_bit()
    record = record_for(blob, pynq_env)
    path = _put(release_path(record), blob[:-1] + b"\0")
    with pytest.raises(BitstreamMismatch, match=r"checksum mismatch: .*; run `vta bitstream fetch --force` to "
                       r"replace the cached file$"):
        fetch(pynq_env, base_url=served.url, expected=record)
    served.put(REMOTE, blob)
    assert fetch(pynq_env, base_url=served.url, expected=record, force=True) == path
    assert path.read_bytes() == blob and _files(vta_cache) == [f"pynq/0_0_2/{NAME}"]


def test_fetch_checksum_mismatch_leaves_nothing(vta_cache, served, pynq_env):
    blob = make_bit()
    served.put(REMOTE, blob[:-1] + b"\0")
    record = record_for(blob, pynq_env)
    with pytest.raises(BitstreamMismatch, match=rf"^{served.url}/{REMOTE}: checksum mismatch: the file has sha256 "
                       rf"[0-9a-f]{{64}}, the release pynq/0\.0\.2/{NAME} needed by .* has sha256 {record.sha256}$"):
        fetch(pynq_env, base_url=served.url, expected=record)
    assert _files(vta_cache) == []


def test_fetch_oversized_download_leaves_nothing(vta_cache, served, pynq_env):
    blob = make_bit()
    served.put(REMOTE, make_bit(bytes(1 << 17)))
    with pytest.raises(BitstreamMismatch, match=r"size mismatch: the server sent more than the 1131 bytes of "
                       rf"TARGET=pynq HW_VER=0\.0\.2 \({NAME}\)$"):
        fetch(pynq_env, base_url=served.url, expected=record_for(blob, pynq_env))
    assert _files(vta_cache) == []


def test_fetch_404_says_build_your_own(vta_cache, served, pynq_env):
    blob = make_bit()
    with pytest.raises(BitstreamError, match=rf"^no released bitstream for TARGET=pynq HW_VER=0\.0\.2 \({NAME}\) at "
                       rf"{served.url}/{REMOTE} \(HTTP 404 Not Found\): build your own, or pass another base URL$"):
        fetch(pynq_env, base_url=served.url, expected=record_for(blob, pynq_env))
    assert _files(vta_cache) == []


def test_fetch_other_http_error(vta_cache, served, pynq_env):
    served.status[f"/bitstreams/{REMOTE}"] = 503
    with pytest.raises(BitstreamError, match=rf"^downloading TARGET=pynq HW_VER=0\.0\.2 \({NAME}\) from "
                       rf"{served.url}/{REMOTE} failed: HTTP 503 Service Unavailable$"):
        fetch(pynq_env, base_url=served.url, expected=record_for(make_bit(), pynq_env))
    assert _files(vta_cache) == []


def test_fetch_from_a_server_that_never_answers(vta_cache, pynq_env):
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # connections complete in the backlog but nobody ever reads or answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/bitstreams"
        start = time.monotonic()
        with pytest.raises(BitstreamError, match=rf"^downloading TARGET=pynq .* from {url}/{REMOTE} failed: "
                           r"no answer within 0\.2 s$"):
            fetch(pynq_env, base_url=url, expected=record_for(make_bit(), pynq_env), timeout=0.2)
    assert time.monotonic() - start < 5
    assert _files(vta_cache) == []


def test_fetch_connection_refused(vta_cache, pynq_env):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
        with pytest.raises(BitstreamError, match=rf"^downloading TARGET=pynq .* from {url}/{REMOTE} failed: "
                           r".*[Cc]onnection refused"):
            fetch(pynq_env, base_url=url, expected=record_for(make_bit(), pynq_env), timeout=2)


def test_fetch_unreleased_config_fails_before_the_network(vta_cache, user_env):
    with pytest.raises(BitstreamError, match=r"^no released bitstream for TARGET=pynq HW_VER=0\.0\.2: "
                       r"pynq/0\.0\.2/2x16_i8w8a32_15_15_18_17\.bit is not in the distribution; build your own"):
        fetch(user_env, base_url="http://127.0.0.1:9")
    assert _files(vta_cache) == []


def test_fetch_record_for_another_config_is_refused(vta_cache, pynq_env):
    record = record_for(make_bit(), pynq_env, hw_ver="0.0.1")
    with pytest.raises(BitstreamMismatch, match=r"HW_VER '0\.0\.1' vs configured '0\.0\.2'$"):
        fetch(pynq_env, base_url="http://127.0.0.1:9", expected=record)


def test_fetch_into_an_unusable_cache(tmp_path, monkeypatch, served, pynq_env):
    blob = make_bit()
    served.put(REMOTE, blob)
    record = record_for(blob, pynq_env)
    monkeypatch.setenv("VTA_CACHE_PATH", str(_put(tmp_path / "not_a_dir", b"")))
    with pytest.raises(BitstreamError, match=rf"^cannot write to the bitstream cache directory "
                       rf"{tmp_path}/not_a_dir/pynq/0_0_2: "):
        fetch(pynq_env, base_url=served.url, expected=record)
    monkeypatch.setenv("VTA_CACHE_PATH", str(tmp_path / "cache"))
    release_path(record).mkdir(parents=True)  # a directory where the file belongs
    with pytest.raises(BitstreamError, match=rf"^cannot move the verified download into the cache as "
                       rf"{release_path(record)}: "):
        fetch(pynq_env, base_url=served.url, expected=record, force=True)
    assert _files(tmp_path / "cache") == []


# --- base URL checks ---------------------------------------------------------------------------
@pytest.mark.parametrize("url, message", [
    ("notaurl", "'notaurl': scheme missing is not allowed: use https://HOST/..., or file:///PATH for a local copy"),
    ("ftp://example.org/x", "'ftp://example.org/x': scheme ftp: is not allowed: use https://HOST/..., or "
                            "file:///PATH for a local copy"),
    ("https://", "'https://' has no host"),
    ("http://", "'http://' has no host"),
    ("https://example.org:0/b", "'https://example.org:0/b' has port 0"),
    ("http://example.org/bitstreams", "'http://example.org/bitstreams': plain http:// is allowed only to this "
                                      "machine (localhost, 127.0.0.1, ::1); use https://example.org/bitstreams"),
    ("https://me:s3cret@example.org/b", "'https://me:***@example.org/b' contains credentials (user@ or "
                                        "user:password@); the distribution is public, so remove them"),
    ("https://token@example.org/b", "'https://token@example.org/b' contains credentials (user@ or "
                                    "user:password@); the distribution is public, so remove them"),
    ("file://example.org/srv/b", "'file://example.org/srv/b': a file: URL must name a local path, as "
                                 "file:///PATH or file://localhost/PATH"),
    ("file:", "'file:': a file: URL must name a local path, as file:///PATH or file://localhost/PATH"),
    ("https://example.org:99999/b", "'https://example.org:99999/b' is malformed: Port out of range 0-65535"),
])
def test_bad_base_url_is_refused_naming_it(url, message):
    with pytest.raises(BitstreamError, match=f"^bitstream base URL {re.escape(message)}$"):
        check_base_url(url)


@pytest.mark.parametrize("url, checked", [
    (DISTRO_URL, DISTRO_URL), ("https://example.org/b/", "https://example.org/b"),
    ("http://127.0.0.1:8000/b", "http://127.0.0.1:8000/b"), ("http://localhost/b", "http://localhost/b"),
    ("http://[::1]:80/b", "http://[::1]:80/b"), ("file:///srv/b", "file:///srv/b"),
    ("file://localhost/srv/b", "file://localhost/srv/b"),
])
def test_good_base_url_is_accepted(url, checked):
    assert check_base_url(url) == checked


def test_fetch_checks_the_url_and_timeout_before_touching_cache_or_network(vta_cache, pynq_env):
    record = record_for(make_bit(), pynq_env)
    with pytest.raises(BitstreamError, match=r"^bitstream base URL 'https://me:\*\*\*@example\.org/b' contains "
                                             r"credentials"):
        fetch(pynq_env, base_url="https://me:s3cret@example.org/b", expected=record)
    with pytest.raises(BitstreamError, match=r"^bitstream base URL 'http://example\.org/b': plain http:// is "
                                             r"allowed only to this machine"):
        fetch(pynq_env, base_url="http://example.org/b", expected=record)
    with pytest.raises(BitstreamError, match=r"^timeout 0: must be more than 0 seconds$"):
        fetch(pynq_env, base_url=DISTRO_URL, expected=record, timeout=0)
    assert _files(vta_cache) == []


def test_fetch_from_a_local_copy_with_a_file_url(vta_cache, tmp_path, pynq_env):
    blob = make_bit()
    _put(tmp_path / "mirror" / "bitstreams" / REMOTE, blob)
    path = fetch(pynq_env, base_url=(tmp_path / "mirror" / "bitstreams").as_uri() + "/",
                 expected=record_for(blob, pynq_env))
    assert path.read_bytes() == blob and _files(vta_cache) == [f"pynq/0_0_2/{NAME}"]
