"""Writing result files so that a kill at any instant leaves the old file or the new, never half.

The new content goes to a hidden sibling first and is renamed over the target once complete
(a rename within one directory is atomic on POSIX filesystems).
"""

import contextlib
import os
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
    finally:
        staging.unlink(missing_ok=True)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Writes `text` to `path` atomically; returns the path."""
    with replaced_atomically(path) as staging:
        staging.write_text(text)
    return Path(path)
