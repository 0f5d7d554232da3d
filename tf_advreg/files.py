"""Writing result files so that a kill at any instant leaves the old file or the new, never half.

The new content goes to a hidden sibling first and is renamed over the target once complete
(a rename within one directory is atomic on POSIX filesystems).
"""

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def replaced_atomically(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a staging path to write; it replaces `path` only if the block completes.

    The staging name keeps the suffix, so writers that infer a format from it (matplotlib) work.
    """
    path = Path(path)
    staging = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        yield staging
        os.replace(staging, path)
    except OSError as error:  # name the file the user asked for, not the staging file
        raise OSError(error.errno, f"could not write {path} ({error.strerror or error})") from error
    finally:
        staging.unlink(missing_ok=True)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Writes `text` to `path` atomically; returns the path."""
    with replaced_atomically(path) as staging:
        staging.write_text(text)
    return Path(path)


def check_writable(path: str | os.PathLike) -> None:
    """Raises OSError naming `path` unless a file can be written there (missing parent
    directories count as creatable). Tools call it before long work, so that a bad output path
    fails at once instead of discarding the finished results."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, f"{path} is a directory; name a file to write")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, f"cannot write {path}: {parent} is not a directory")
    try:
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as error:
        raise OSError(
            error.errno, f"cannot write {path}: {parent} is not writable ({error.strerror})"
        ) from error
