"""One training per workdir at a time.

Two processes training one workdir (the same command started twice, or a sweep restarted while
an orphaned run of it still trains) would interleave their checkpoints and metrics, and a
resume would then start from weights neither run made. The chief holds an exclusive `flock` on
the workdir directory itself while it trains: nothing is written for it, and the kernel lets
go when the process ends however it ends (SIGKILL included), so a killed run never leaves a
stale lock behind. On network filesystems flock is only as good as the server's locking.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def hold(workdir: str | os.PathLike) -> Iterator[Path]:
    """Creates `workdir` if needed and holds its lock for the block; raises ValueError at once
    when another process holds it."""
    workdir = Path(workdir)
    if workdir.exists() and not workdir.is_dir():
        raise ValueError(f"--workdir={workdir} is a file; choose a directory for the run.")
    workdir.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(workdir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ValueError(
                f"another process is training {workdir}; wait for it to end (or stop it), "
                "then re-run this command to resume."
            ) from None
        yield workdir
    finally:
        os.close(descriptor)
