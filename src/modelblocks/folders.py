"""Output folders written as a whole: a failure half-way never leaves a half-written folder."""

from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replaced_folder(directory: str | Path):
    """Yields an empty temporary folder beside `directory`; when the block succeeds it replaces
    `directory` as a whole, when it raises it is removed and `directory` stays as it was."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        yield tmp
        if directory.exists():
            shutil.rmtree(directory)
        tmp.rename(directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def file_in_the_way(directory: str | Path) -> Path | None:
    """The nearest existing ancestor of `directory` when it is a file (so the folder cannot be made)."""
    parent = Path(directory)
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    return parent if parent.exists() and not parent.is_dir() else None
