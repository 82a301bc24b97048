"""Files written atomically, with the permissions a plain ``open()`` would give, and their digests.

Every file the harness writes (weights, configs, results, checkpoints, tables) goes through
``atomic_write`` / ``atomic_write_json`` / ``atomic_save_tensors`` (a temporary file renamed onto
the target) or ``atomic_directory`` (a temporary folder swapped into place), so a kill at any
moment leaves the old file or the new one, never half of one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch
from safetensors.torch import save_file


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: permissions of written files: what ``open()`` would give (0o666 minus the umask), not mkstemp's 0o600
FILE_MODE = 0o666 & ~_umask()


def atomic_write(path: str | Path, write) -> None:
    """Run ``write(tmp_path)`` then rename onto ``path``: readers see the old or the new file, never
    half. The file gets the umask's permissions (``FILE_MODE``), as a plain ``open()`` would."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """``text`` into ``path`` atomically (``atomic_write``), its folder made where missing."""
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


@contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Fill a fresh directory beside ``path`` inside the block, then put it in ``path``'s place
    (an existing ``path`` is replaced). A kill inside the block leaves ``path`` as it was; only
    a hidden ``.<name>.*.tmp`` folder remains, which the next write of ``path`` removes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old.tmp")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def atomic_write_json(path: str | Path, data) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")

    atomic_write(path, write)


def atomic_save_tensors(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict | None = None) -> None:
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))
