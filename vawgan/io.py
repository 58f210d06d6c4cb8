"""Atomic file output: write to a temporary file in the same folder, then rename.

A run killed at any moment leaves either the old file or the complete new one,
never a half-written file. A write that fails (permission, no space, a parent that is
a file, a read-only file system) raises :class:`vawgan.errors.OutputError`, one line
naming the file and the cause, and leaves nothing behind; :func:`check_writable`
tells the same before any work is done.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Callable, Iterator, Optional, Union

from .errors import OutputError

PathLike = Union[str, os.PathLike]

#: errno -> the cause named in an :class:`OutputError`
_CAUSES = {errno.EACCES: "permission denied", errno.EPERM: "permission denied",
           errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
           errno.EROFS: "read-only file system", errno.ENOTDIR: "a parent is a file, not a folder",
           errno.EISDIR: "is a folder", errno.ENAMETOOLONG: "file name too long",
           errno.EFBIG: "file too large for the file system", errno.EIO: "input/output error"}
#: a writer's non-OSError failure (libsndfile's "System error", torch's "unexpected
#: pos") with less than this many bytes free in the folder is reported as a full disk
_LOW_SPACE = 1 << 20


def _first_existing(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists."""
    p = Path(os.path.abspath(path))
    while not os.path.lexists(p) and p != p.parent:
        p = p.parent
    return p


def write_cause(e: BaseException, folder: Optional[PathLike] = None) -> Optional[str]:
    """The cause of a failed write in words, or None when it is not a write failure.

    An OSError with a known errno is named; any other exception counts as "no space
    left on device" when ``folder`` has (almost) no free space left.
    """
    if isinstance(e, OutputError):
        return e.cause
    if isinstance(e, OSError) and e.errno in _CAUSES:
        return _CAUSES[e.errno]
    if isinstance(e, (FileExistsError, NotADirectoryError)):
        return "a parent is a file, not a folder"
    if folder is not None:
        try:
            if shutil.disk_usage(_first_existing(Path(folder))).free < _LOW_SPACE:
                return "no space left on device"
        except OSError:
            pass
    return None


def check_writable(path: PathLike, folder: bool = False) -> None:
    """Raise :class:`OutputError` now when ``path`` could not be written later.

    Checks what can be checked without writing: ``path`` is not a folder (or, with
    ``folder``, not a file), its nearest existing ancestor is a folder, and this
    process may create files there (permission, read-only file system).
    """
    path = Path(path)
    if folder:
        if path.exists() and not path.is_dir():
            raise OutputError(path, "is a file, not a folder")
    elif path.is_dir():
        raise OutputError(path, "is a folder; give a file name")
    anc = _first_existing(path if folder else path.parent)
    if not anc.is_dir():
        raise OutputError(path, f"{anc} is a file, not a folder")
    if not os.access(anc, os.W_OK | os.X_OK):
        try:
            ro = bool(os.statvfs(anc).f_flag & os.ST_RDONLY)
        except (OSError, AttributeError):
            ro = False
        raise OutputError(path, "read-only file system" if ro
                          else f"permission denied in {anc}")


@contextlib.contextmanager
def atomic_path(path: PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    ``suffix`` is appended to the temporary name (some writers, e.g. numpy's
    ``savez``, insist on an extension).
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(path, "is a folder; give a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + suffix,
                                    dir=path.parent)
    except OSError as e:
        raise OutputError(path, write_cause(e) or e.strerror or type(e).__name__) from None
    os.close(fd)
    tmp = Path(name)
    # mkstemp makes the file private (0600): give it the mode of the file it replaces,
    # else that of a new file
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    os.chmod(tmp, mode)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except Exception as e:
        cause = write_cause(e, path.parent)
        if cause is None:
            raise
        raise OutputError(path, cause) from None
    finally:
        if tmp.exists():
            tmp.unlink()


def remove_stale_temporaries(path: PathLike) -> int:
    """Delete the temporaries that :func:`atomic_path` left beside ``path`` when its
    process was killed mid-write (``.<name>.*.tmp*``); returns how many.

    Only for a file this process owns (e.g. a training run's checkpoint at resume):
    another process writing ``path`` at the same moment would lose its temporary.
    """
    path = Path(path)
    n = 0
    if path.parent.is_dir():
        for tmp in path.parent.glob(f".{path.name}.*.tmp*"):
            try:
                tmp.unlink()
                n += 1
            except OSError:
                pass
    return n


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: PathLike, text: str) -> None:
    """UTF-8; a file name that was not valid UTF-8 (a surrogate escape) keeps its bytes."""
    atomic_write_bytes(path, text.encode("utf-8", errors="surrogateescape"))


def atomic_write_with(path: PathLike, writer: Callable[[Path], None], suffix: str = "") -> None:
    """Call ``writer(tmp_path)`` and move the result onto ``path`` atomically."""
    with atomic_path(path, suffix=suffix) as tmp:
        writer(tmp)


def same_file(a: PathLike, b: PathLike) -> bool:
    """True when two paths name the same existing file (used to refuse overwriting an input)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)
