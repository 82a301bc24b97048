"""Reading benchmark rows: local files under the data root (LLM-Adapters JSON, JSON Lines, GLUE
TSV), or the hub source named in the task YAML when the file is missing and ``datasets`` is
installed; either is checked against its declaration (``sources.yaml``: rows, and sha256 of a local
file). Also the ``Example`` every task yields and the paper's GLUE dev/test re-split.
"""

from __future__ import annotations

import csv
import functools
import importlib.util
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
FIXED_SPLIT_SEED = 42
SOURCES = Path(__file__).with_name("sources.yaml")
UNVERIFIED = "REFT_UNVERIFIED_DATA"  # =1: accept copies that differ from sources.yaml


class SourceMismatch(ValueError):
    """A data file (or hub split) is not the copy its declaration in ``sources.yaml`` describes."""


def data_root() -> Path:
    """``$REFT_DATA_ROOT`` if set, else ``<repo>/../shared/data``."""
    return Path(os.environ.get("REFT_DATA_ROOT") or REPO.parent / "shared" / "data")


@dataclass(frozen=True)
class Example:
    """One row ready for a model.

    ``prompt`` is the templated text to tokenize (classification: ``text_a``, plus ``"\\n" +
    text_b`` for pairs, for display only: tokenize ``(text_a, text_b)`` as a pair like the paper);
    ``target`` the training response without EOS; ``gold`` what ``Task.score`` compares with.
    """

    id: str
    prompt: str
    target: str
    gold: Any
    raw: dict = field(repr=False)
    text_a: str | None = None
    text_b: str | None = None
    label: int | float | None = None


@dataclass(frozen=True)
class SplitSource:
    """Where one split lives: ``path`` under the data root, the ``hub`` fallback (keyword arguments
    of ``datasets.load_dataset``, ``split`` included), and an optional ``rows`` slice ``"a:b"``."""

    path: str
    hub: dict | None = None
    rows: str | None = None

    def row_slice(self) -> slice:
        start, _, stop = (self.rows or ":").partition(":")
        return slice(int(start) if start else None, int(stop) if stop else None)


def read_split(source: SplitSource, root: Path, tsv_header: bool = True) -> tuple[list[tuple[int, dict]], str, bool]:
    """Rows of a split as ``(row number in the source, row)``, where they came from, and whether
    that was the hub. Raises FileNotFoundError naming the local path and the hub source."""
    path = Path(root) / source.path
    if path.is_file():
        rows, where, from_hub = read_file(path, tsv_header), str(path), False
    elif source.hub is not None and importlib.util.find_spec("datasets") is not None:
        import datasets

        try:
            rows = [dict(row) for row in datasets.load_dataset(**source.hub)]
        except Exception as error:  # offline, unknown dataset, bad format: all mean "not readable"
            raise FileNotFoundError(f"{path} not found, and the hub source {source.hub} could not be read "
                                    f"({type(error).__name__}: {error})") from error
        where, from_hub = f"hub {source.hub}", True
    else:
        hub = f"; with network, `pip install datasets` to read it from the hub: {source.hub}" if source.hub else ""
        raise FileNotFoundError(f"{path} not found: put the file there or set REFT_DATA_ROOT{hub}")
    check_source(source.path, rows, where, from_hub, None if from_hub else path)
    numbered = list(enumerate(rows))[source.row_slice()]
    return numbered, where, from_hub


@functools.cache
def declared_sources() -> dict[str, dict]:
    import yaml

    return yaml.safe_load(SOURCES.read_text())["files"]


_DIGESTS: dict[tuple, str] = {}


def file_digest(path: Path) -> str:
    """sha256 of a file, cached per path, size and modification time."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _DIGESTS:
        from reft.files import file_sha256  # imports torch: only when a file is hashed

        _DIGESTS[key] = file_sha256(path)
    return _DIGESTS[key]


def check_source(declared_path: str, rows: list, where: str, from_hub: bool, path: Path | None) -> None:
    """Refuse (``SourceMismatch``) rows that are not the declared copy of ``declared_path``: another
    number of rows, or (a local file) another sha256. Undeclared paths pass; so does everything
    under ``REFT_UNVERIFIED_DATA=1``."""
    declared = declared_sources().get(declared_path)
    if declared is None or os.environ.get(UNVERIFIED) == "1":
        return
    expected = declared.get("hub_rows", declared["rows"]) if from_hub else declared["rows"]
    bypass = f"(declared in {SOURCES.relative_to(REPO)}; {UNVERIFIED}=1 reads it anyway)"
    if len(rows) != expected:
        raise SourceMismatch(f"{where}: holds {len(rows):,} rows, but {declared_path} is declared with "
                             f"{expected:,}: not the copy the tasks were written for {bypass}")
    if path is not None and file_digest(path) != declared["sha256"]:
        raise SourceMismatch(f"{where}: sha256 {file_digest(path)[:16]}… differs from the declared "
                             f"{declared['sha256'][:16]}… although the {expected:,} rows match: another version "
                             f"of {declared_path} {bypass}")


def read_file(path: Path, tsv_header: bool = True) -> list[dict]:
    """A ``.json`` (a JSON list, or JSON Lines like ``datasets``' json reader), ``.jsonl`` or ``.tsv`` file."""
    if path.suffix == ".tsv":
        return read_tsv(path, tsv_header)
    if path.suffix not in (".json", ".jsonl"):
        raise ValueError(f"{path}: unsupported file type {path.suffix!r} (expected .json, .jsonl or .tsv)")
    content = path.read_text(encoding="utf-8")
    if content.lstrip().startswith("["):
        try:
            rows = json.loads(content)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: invalid JSON: {error}") from None
    else:
        rows = []
        for line_number, line in enumerate(content.splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as error:
                    raise ValueError(f"{path}, row {len(rows)} (line {line_number}): invalid JSON: {error}") from None
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ValueError(f"{path}, row {index}: expected a JSON object, got {type(row).__name__}")
    return rows


def read_tsv(path: Path, header: bool = True) -> list[dict]:
    """GLUE TSV, read as GLUE's own loaders do (no quoting; a BOM is dropped). Rows are keyed by
    the header's names, or by column index for headerless files (CoLA)."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        lines = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    names = lines.pop(0) if header else list(range(len(lines[0]) if lines else 0))
    rows = []
    for index, values in enumerate(lines):
        if len(values) != len(names):
            raise ValueError(f"{path}, row {index}: expected {len(names)} tab-separated fields, got {len(values)}")
        rows.append(dict(zip(names, values)))
    return rows


def classification_fields(row: dict, columns: dict, labels: list[str] | None) -> tuple[str, str | None, int | float]:
    """``(text_a, text_b, label)`` of a GLUE row. ``labels`` lists the class names in the HF
    ``glue`` order; a label may be such a name or its index. ``labels=None`` is regression (STS-B)."""
    text_a = row[columns["text_a"]]
    text_b = row[columns["text_b"]] if "text_b" in columns else None
    value = row[columns["label"]]
    if labels is None:
        try:
            return text_a, text_b, float(value)
        except (TypeError, ValueError):
            raise ValueError(f"label {value!r} is not a number") from None
    if isinstance(value, str) and value in labels:
        return text_a, text_b, labels.index(value)
    try:
        label = int(value)
    except (TypeError, ValueError):
        label = -1
    if not 0 <= label < len(labels):
        raise ValueError(f"label {value!r} is neither one of {labels} nor an index below {len(labels)}")
    return text_a, text_b, label


def glue_dev_test_split(n: int, seed: int, fixed: bool = False) -> tuple[list[int], list[int]]:
    """The paper's re-split of a GLUE validation set of ``n`` rows: ``(test_indices, dev_indices)``.

    pyreft ``train.py``: ``set_seed(seed)`` then ``random_split(val, [n - k, k])`` with
    k = 1000 if n > 5000 else n // 2; the first part is the reported test set, the second the dev
    set for best-epoch selection (no torch random numbers are drawn between the two calls). This
    reproduces it without touching the global RNG. Because the split follows the seed, the seed-42
    dev half used for tuning overlaps the test halves of seeds 43–46; ``fixed=True`` uses the
    seed-42 split for every seed, so tuning data never reaches any seed's test set.
    """
    import torch

    k = 1000 if n > 5000 else n // 2
    generator = torch.Generator().manual_seed(FIXED_SPLIT_SEED if fixed else seed)
    order = torch.randperm(n, generator=generator).tolist()
    return order[: n - k], order[n - k:]
