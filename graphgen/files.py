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
