"""The bitstream cache users already have (spec §1.4), checked and filled so only a matching file is programmed.

Layout: ``$VTA_CACHE_PATH`` (default ``~/.vta_cache``) / TARGET / HW_VER with ``.`` -> ``_`` /
``<BITSTREAM>.bit``, e.g. ``~/.vta_cache/pynq/0_0_2/1x16_i8w8a32_15_15_18_17.bit``. A file whose
name, HW_VER or checksum does not match the active configuration is refused with
:class:`BitstreamMismatch` naming both sides.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import ipaddress
import logging
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import SplitResult, urlsplit

from vta.bitstream.header import BitHeader, parse_header
from vta.bitstream.manifest import RELEASES, BitstreamRecord, by_sha256, expected_for, extension_for, lookup
from vta.config import Environment, cache_dir, get_env, sudo_user_cache_dir
from vta.errors import BitstreamError, BitstreamMismatch

__all__ = ["DEFAULT_TIMEOUT_S", "DISTRO_URL", "VerifiedBitstream", "cache_path", "cache_root", "check_base_url",
           "fetch", "release_path", "verify"]

DISTRO_URL = "https://github.com/uwsampl/vta-distro/raw/master/bitstreams"
DEFAULT_TIMEOUT_S = 30.0
_CHUNK = 1 << 16
_LOOPBACK_NAMES = ("localhost",)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class VerifiedBitstream:
    """A file that passed :func:`verify`: ``record`` is its release, or None for a user build."""

    path: Path
    size: int
    sha256: str
    header: BitHeader | None
    record: BitstreamRecord | None


def cache_root() -> Path:
    """``$VTA_CACHE_PATH``, else ``~/.vta_cache``: the directory upstream VTA already fills."""
    return cache_dir()


def _cache_file(target: str, hw_ver: str, filename: str) -> Path:
    return cache_root() / target / hw_ver.replace(".", "_") / filename


def cache_path(env: Environment | None = None) -> Path:
    """Where the active configuration's bitstream is cached (the file need not exist)."""
    env = env if env is not None else get_env()
    return _cache_file(env.TARGET, env.HW_VER, env.BITSTREAM + extension_for(env.TARGET))


def _cached(env: Environment) -> Path:
    """The cached file for ``env``; under sudo, the invoking user's copy when root's cache has none."""
    path = cache_path(env)
    other = sudo_user_cache_dir()
    if not path.exists() and other is not None:
        theirs = other / path.relative_to(cache_root())
        if theirs.exists():
            logger.info("using %s: the bitstream cache of the user who ran sudo (%s has none)", theirs, path)
            return theirs
    return path


def release_path(record: BitstreamRecord) -> Path:
    """Where a released file is cached."""
    return _cache_file(record.target, record.hw_ver, record.filename)


def _configured(env: Environment) -> str:
    return f"the active configuration (TARGET={env.TARGET}, HW_VER={env.HW_VER}, BITSTREAM={env.BITSTREAM})"


def _check_record(record: BitstreamRecord, env: Environment, what: str) -> None:
    """BitstreamMismatch unless a release is the one ``env`` needs; names every differing field."""
    pairs = (("TARGET", record.target, env.TARGET), ("HW_VER", record.hw_ver, env.HW_VER),
             ("name", record.name, env.BITSTREAM))
    differ = [f"{field} {got!r} vs configured {want!r}" for field, got, want in pairs if got != want]
    if differ:
        raise BitstreamMismatch(
            f"{what} is the release {record.key}, but {_configured(env)} needs "
            f"{env.TARGET}/{env.HW_VER}/{env.BITSTREAM}{extension_for(env.TARGET)}: {'; '.join(differ)}"
        )


def _check_content(data: bytes, source: str, env: Environment, record: BitstreamRecord | None,
                   manifest: tuple[BitstreamRecord, ...]) -> tuple[str, BitHeader | None]:
    """Check bytes against the release ``env`` needs; returns (sha256, header or None for .rbf)."""
    sha = hashlib.sha256(data).hexdigest()
    known = by_sha256(sha, manifest)
    if known is not None:
        _check_record(known, env, source)
    if record is not None:
        if len(data) != record.size:
            raise BitstreamMismatch(
                f"{source}: size mismatch: the file has {len(data)} bytes, the release {record.key} "
                f"needed by {_configured(env)} has {record.size} bytes"
            )
        if sha != record.sha256:
            raise BitstreamMismatch(
                f"{source}: checksum mismatch: the file has sha256 {sha}, the release {record.key} "
                f"needed by {_configured(env)} has sha256 {record.sha256}"
            )
    if extension_for(env.TARGET) != ".bit":
        return sha, None
    header = parse_header(data, source)
    if record is not None:
        for field in ("design", "part", "data_length"):
            got, want = getattr(header, field), getattr(record, field)
            if got != want:
                raise BitstreamMismatch(
                    f"{source}: header {field} mismatch: the file has {got!r}, the release {record.key} has {want!r}"
                )
    return sha, header


def verify(path: str | os.PathLike[str] | None = None, env: Environment | None = None, *,
           expected: BitstreamRecord | None = None,
           manifest: tuple[BitstreamRecord, ...] = RELEASES) -> VerifiedBitstream:
    """Check that a bitstream file is the one the active configuration needs.

    The file name must be ``<BITSTREAM>.bit`` (``.rbf`` for de10nano). If the file is a known
    release of another configuration, or the configuration was released and the file's size,
    sha256 or header (design, part, data length) differ from that release, it is refused. A
    configuration that was never released (a user build) gets the name and header checks only.

    Parameters
    ----------
    path : path-like, optional
        The file (default: the cache path of ``env``).
    env : Environment, optional
        The configuration to check against (default: the active one).
    expected : BitstreamRecord, optional
        The record to check against instead of the manifest's entry for ``env``.
    manifest : tuple of BitstreamRecord
        The known releases (default: the public distribution).

    Returns
    -------
    VerifiedBitstream

    Raises
    ------
    BitstreamMismatch
        Name, TARGET, HW_VER, size, checksum or header differ; the message names both sides.
    BitstreamError
        The file is missing or unreadable, or its header is malformed.

    Example
    -------
    >>> verify().record.key
    'pynq/0.0.2/1x16_i8w8a32_15_15_18_17.bit'
    """
    env = env if env is not None else get_env()
    path = Path(path) if path is not None else _cached(env)
    wanted = env.BITSTREAM + extension_for(env.TARGET)
    if path.name != wanted:
        raise BitstreamMismatch(
            f"{path}: name mismatch: the file is named {path.name!r}, {_configured(env)} needs {wanted!r}"
        )
    if expected is not None:
        _check_record(expected, env, "the expected record")
    record = expected if expected is not None else lookup(env.TARGET, env.HW_VER, env.BITSTREAM, manifest)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BitstreamError(
            f"no bitstream file at {path}; run `vta bitstream fetch` to download the release for {_configured(env)}"
        ) from None
    except OSError as e:
        raise BitstreamError(f"cannot read bitstream file {path}: {e.strerror}") from e
    sha, header = _check_content(data, str(path), env, record, manifest)
    return VerifiedBitstream(path, len(data), sha, header, record)


def _redacted(url: str, parts: SplitResult) -> str:
    """The URL with any password replaced, so an error message never repeats a secret."""
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{parts.username}:***@{host}").geturl()


def _loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_base_url(url: str) -> str:
    """Refuse a distribution URL a bitstream must not come from; returns it without a trailing ``/``.

    Allowed: ``https://HOST/...``; ``file:`` for a local copy (``file:///path`` or
    ``file://localhost/path``); plain ``http://`` only to a loopback host (``localhost``,
    127.0.0.0/8, ``::1``), where nothing crosses the network. Credentials in the URL are refused:
    they would be sent in the clear to every redirect and written to logs.

    Raises
    ------
    BitstreamError
        The URL is malformed, has another scheme, no host, a remote ``http://`` host, or credentials;
        the message names the URL (with any password masked).
    """
    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or parts.port > 0
    except ValueError as e:
        raise BitstreamError(f"bitstream base URL {url!r} is malformed: {e}") from None
    shown = _redacted(url, parts)
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http", "file"):
        raise BitstreamError(f"bitstream base URL {shown!r}: scheme {parts.scheme + ':' if parts.scheme else 'missing'}"
                             f" is not allowed: use https://HOST/..., or file:///PATH for a local copy")
    if parts.username is not None or parts.password is not None:
        raise BitstreamError(f"bitstream base URL {shown!r} contains credentials (user@ or user:password@); the "
                             "distribution is public, so remove them")
    if scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path:
            raise BitstreamError(f"bitstream base URL {shown!r}: a file: URL must name a local path, as "
                                 "file:///PATH or file://localhost/PATH")
        return url.rstrip("/")
    if not parts.hostname or not port_ok:
        raise BitstreamError(f"bitstream base URL {shown!r} has no host" if not parts.hostname else
                             f"bitstream base URL {shown!r} has port 0")
    if scheme == "http" and not _loopback(parts.hostname):
        raise BitstreamError(f"bitstream base URL {shown!r}: plain http:// is allowed only to this machine "
                             f"(localhost, 127.0.0.1, ::1); use https://{parts.netloc}{parts.path}")
    return url.rstrip("/")


def _download(url: str, out: BinaryIO, limit: int, timeout: float, what: str) -> None:
    """Stream ``url`` into ``out``, refusing more than ``limit`` bytes; BitstreamError on any failure."""
    opener = urllib.request.build_opener()  # a fresh opener, so proxy settings are read now
    received = 0
    try:
        with opener.open(url, timeout=timeout) as response:
            while chunk := response.read(_CHUNK):
                received += len(chunk)
                if received > limit:
                    raise BitstreamMismatch(f"{url}: size mismatch: the server sent more than the {limit} bytes "
                                            f"of {what}")
                out.write(chunk)
    except urllib.error.HTTPError as e:
        e.close()
        if e.code == 404:
            raise BitstreamError(f"no released bitstream for {what} at {url} (HTTP 404 Not Found): "
                                 "build your own, or pass another base URL") from None
        raise BitstreamError(f"downloading {what} from {url} failed: HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        reason = f"no answer within {timeout:g} s" if isinstance(e.reason, TimeoutError) else str(e.reason)
        raise BitstreamError(f"downloading {what} from {url} failed: {reason}") from e
    except TimeoutError as e:
        raise BitstreamError(f"downloading {what} from {url} failed: no answer within {timeout:g} s") from e
    except (OSError, http.client.HTTPException) as e:
        raise BitstreamError(f"downloading {what} from {url} failed after {received} bytes: {e!r}") from e


def fetch(env: Environment | None = None, *, base_url: str = DISTRO_URL, expected: BitstreamRecord | None = None,
          force: bool = False, timeout: float = DEFAULT_TIMEOUT_S,
          manifest: tuple[BitstreamRecord, ...] = RELEASES) -> Path:
    """Download the active configuration's released bitstream into the cache, checksum-verified.

    The file is streamed to a temporary file beside its cache path, checked against the release's
    size, sha256 and header, and only then renamed into place, so a failed or corrupted download
    leaves nothing in the cache. A cached file that already verifies is kept unless ``force``.

    Parameters
    ----------
    env : Environment, optional
        The configuration whose release to fetch (default: the active one).
    base_url : str
        The distribution's ``bitstreams/`` URL; the file is ``<base_url>/<TARGET>/<HW_VER>/<name>``.
        Checked by :func:`check_base_url` (https, file: for a local copy, http only to loopback).
    expected : BitstreamRecord, optional
        The record to fetch and verify instead of the manifest's entry for ``env``.
    force : bool
        Download even when a verified copy is cached.
    timeout : float
        Seconds to wait for the connection and for each read.
    manifest : tuple of BitstreamRecord
        The known releases (default: the public distribution).

    Returns
    -------
    Path
        The cached file.

    Raises
    ------
    BitstreamMismatch
        The download (or the cached copy) differs from the release; nothing new is left in the cache.
    BitstreamError
        The base URL or the timeout is refused; no release exists for the configuration (HTTP 404
        included), or the download failed or timed out.

    Example
    -------
    >>> from vta.config import load_config
    >>> fetch(load_config(target="pynq"))
    PosixPath('/home/xilinx/.vta_cache/pynq/0_0_2/1x16_i8w8a32_15_15_18_17.bit')
    """
    base_url = check_base_url(base_url)
    if not timeout > 0:
        raise BitstreamError(f"timeout {timeout:g}: must be more than 0 seconds")
    env = env if env is not None else get_env()
    record = expected if expected is not None else expected_for(env, manifest)
    _check_record(record, env, "the expected record")
    dest = release_path(record)
    if dest.exists() and not force:
        try:
            verify(dest, env, expected=record, manifest=manifest)
        except BitstreamError as e:
            raise type(e)(f"{e}; run `vta bitstream fetch --force` to replace the cached file") from e
        return dest
    url = f"{base_url}/{record.key}"
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{record.filename}.", suffix=".part", dir=dest.parent)
    except OSError as e:
        raise BitstreamError(f"cannot write to the bitstream cache directory {dest.parent}: {e.strerror}") from e
    try:
        with os.fdopen(fd, "wb") as out:
            _download(url, out, record.size, timeout, f"TARGET={record.target} HW_VER={record.hw_ver} "
                                                      f"({record.filename})")
        _check_content(Path(tmp).read_bytes(), url, env, record, manifest)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a cached bitstream is an ordinary file
        try:
            os.replace(tmp, dest)
        except OSError as e:
            raise BitstreamError(f"cannot move the verified download into the cache as {dest}: {e.strerror}") from e
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return dest
