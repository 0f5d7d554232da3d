"""Result files: written so that a kill at any instant leaves the old file or the new, never
half; read so that a damaged or hand-edited file is one error naming it, never a traceback.

The new content goes to a hidden sibling first and is renamed over the target once complete
(a rename within one directory is atomic on POSIX filesystems).
"""

import contextlib
import csv
import errno
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
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


def replace_directory(new: Path, target: Path) -> None:
    """Moves the directory `new` to `target`; an old `target` is moved aside first and removed
    after, so `target` is the old directory or the new one, never a mix."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
    os.replace(new, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Writes `text` to `path` atomically; returns the path."""
    with replaced_atomically(path) as staging:
        staging.write_text(text)
    return Path(path)


def write_csv(path: str | os.PathLike, rows: Iterable[Sequence]) -> Path:
    """Writes `rows` (the header first) as CSV to `path` atomically; returns the path."""
    with replaced_atomically(path) as staging, staging.open("w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)
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


def parse_json(text: str, source: str) -> object:
    """Parses JSON, refusing NaN and Infinity (Python's json accepts them; no result here may
    hold them). Raises ValueError naming `source` (a file, or a line of one)."""

    def refuse(literal: str) -> float:
        raise _NonFinite(literal)

    def finite(literal: str) -> float:
        value = float(literal)
        return value if math.isfinite(value) else refuse(literal)

    try:
        return json.loads(text, parse_constant=refuse, parse_float=finite)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{source} is not valid JSON ({error.msg}, line {error.lineno})"
        ) from error
    except _NonFinite as error:
        raise ValueError(f"{source} holds {error}, which is not a finite number") from error


class _NonFinite(ValueError):
    pass


def read_json(path: str | os.PathLike, expected: type = dict) -> object:
    """The JSON value of a file, which must be of type `expected`; ValueError names the file."""
    path = Path(path)
    try:
        text = path.read_text()
    except UnicodeDecodeError as error:
        raise ValueError(f"{path} is not a text file ({error.reason})") from error
    value = parse_json(text, str(path))
    if not isinstance(value, expected):
        raise ValueError(
            f"{path} holds a JSON {_json_kind(value)}, not a JSON {_json_kind(expected())}"
        )
    return value


def _json_kind(value: object) -> str:
    kinds = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return kinds.get(type(value), "number")
