"""Atomic file writes: a temporary file in the same directory, then a rename. A crash never leaves a
truncated file in place, and a failed write leaves the old file untouched."""

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO


def write_atomic(path: str | Path, write: Callable[[IO[bytes]], None]) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | Path, obj) -> None:
    write_atomic(path, lambda f: f.write((json.dumps(obj, indent=2) + "\n").encode()))


def read_jsonl(path: str | Path) -> list[dict]:
    """The records of a JSON-lines file (none if it does not exist), without a last line cut short (a process
    killed while appending). Raises ValueError on any other line that is not JSON."""
    path = Path(path)
    if not path.exists():
        return []
    lines = path.read_text().splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines.pop()
    return [json.loads(line) for line in lines if line.strip()]


def filter_jsonl(path: str | Path, keep: Callable[[dict], bool]) -> None:
    """Keeps only the records of a JSON-lines file for which `keep` is true, and drops a last line cut short;
    rewrites the file atomically, and only if something is dropped."""
    path = Path(path)
    if not path.exists():
        return
    text = path.read_text()
    kept = "".join(json.dumps(record) + "\n" for record in read_jsonl(path) if keep(record))
    if kept != text:
        write_atomic(path, lambda f: f.write(kept.encode()))
