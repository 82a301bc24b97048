"""A run's identity is its content: a hash of everything that determines its result.

    identity = run_identity(config)   # {"config": ..., "tasks": {...}, "data": {...}}
    identity_hash(identity)           # 16 hex digits, recorded in <run dir>/identity.json

The identity holds the resolved experiment config without the keys that cannot change a score
(``COSMETIC``: where results go, logging, checkpoint cadence, a guard's permission), the version and fingerprint of every
task the run trains on or scores, and a digest of every data source it reads (the sha256 of a
local file; the ``datasets.load_dataset`` arguments of a hub source). A run directory whose
recorded identity differs from the config's is refused (``RunConflict``) with the keys that differ,
so ``reft train CONFIG train.lr=0.5`` on a finished run never returns the old run's result, and a
killed run is never resumed under another configuration.

Rows are identified by content too (``row_keys``): the digest of the source they were read from and
their row number, so two splits that read the same file (or a copy of it) are seen to overlap
whatever they are called.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from reft.files import atomic_write_json

from benchmarks.experiments.config import ExperimentConfig
from benchmarks.tasks.data import data_root, file_digest
from benchmarks.tasks import Task, get_task

IDENTITY_FILE = "identity.json"
#: config keys that cannot change a run's result (dotted paths)
COSMETIC = ("name", "output_root", "notes", "wandb", "train.log_every", "train.save_every", "train.output_dir",
            "train.resume", "data.allow_contamination")


#: keys added after runs were recorded, with the default that is the behaviour those runs had: a
#: key at that default is left out of the identity, so the runs recorded before it stay valid
ADDED_WITH_DEFAULT = {"eval.scoring": "generate", "data.decontaminate": False, "train.gradient_checkpointing": False,
                      "train.autocast": None, "train.pyreft_eval_dropout": False, "compat": None, "train.fsdp": False,
                      "data.eval_sample": None, "data.drop_truncated": False, "train.group_by_length": False}


class RunConflict(ValueError):
    """A run directory holds (part of) a run of another configuration."""


def _prune(values: dict, dotted: tuple[str, ...]) -> dict:
    values = json.loads(json.dumps(values, default=str))
    for key in dotted:
        *parents, leaf = key.split(".")
        node = values
        for part in parents:
            node = node.get(part, {})
        node.pop(leaf, None)
    return values


def source_digest(task: Task, split: str, root: str | Path | None = None, with_rows: bool = True) -> str:
    """``sha256:<hex>`` of the local file a split reads, or ``hub:<arguments>`` where it has none
    (cached per file, size and modification time), and the split's row slice if ``with_rows``."""
    source = task.splits[split]
    path = Path(root if root is not None else data_root()) / source.path
    rows = f"[{source.rows}]" if source.rows and with_rows else ""
    if not path.is_file():
        return f"hub:{json.dumps(source.hub, sort_keys=True)}{rows}" if source.hub else f"missing:{source.path}"
    return f"sha256:{file_digest(path)}{rows}"


def _read_splits(config: ExperimentConfig) -> list[tuple[str, str]]:
    """(task, split) pairs the run reads: train splits, and the scored split of every eval task
    (GLUE's re-split halves both come from ``validation``)."""
    pairs = [(name, config.data.train_split) for name in config.data.train]
    eval_split = "validation" if config.data.resplit else config.data.eval_split
    pairs += [(name, eval_split) for name in config.data.eval]
    if config.data.dev_split:
        pairs += [(name, config.data.dev_split) for name in config.data.eval]
    return [pair for i, pair in enumerate(pairs) if pair not in pairs[:i]]


def run_identity(config: ExperimentConfig) -> dict:
    tasks, data = {}, {}
    for name, split in _read_splits(config):
        task = get_task(name)
        tasks[name] = {"version": task.version, "fingerprint": task.fingerprint()}
        if split in task.splits:
            data[f"{name}:{split}"] = source_digest(task, split, config.data.data_root)
    values = config.to_dict()
    at_default = tuple(key for key, default in ADDED_WITH_DEFAULT.items() if _get(values, key) == default)
    return {"config": _prune(values, COSMETIC + at_default), "tasks": tasks, "data": data}


def _get(values: dict, dotted: str):
    for part in dotted.split("."):
        values = values.get(part, {}) if isinstance(values, dict) else {}
    return values


def identity_hash(identity: dict) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _flatten(values, prefix: str = "") -> dict:
    if isinstance(values, dict) and values:
        return {k: v for key, value in values.items() for k, v in _flatten(value, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): values}


def differences(recorded: dict, current: dict, limit: int = 8) -> list[str]:
    """``key: recorded → now`` for each leaf that differs."""
    old, new = _flatten(recorded), _flatten(current)
    keys = sorted(k for k in old.keys() | new.keys() if old.get(k, "<absent>") != new.get(k, "<absent>"))
    lines = [f"{k}: {old.get(k, '<absent>')!r} → {new.get(k, '<absent>')!r}" for k in keys[:limit]]
    return lines + ([f"... and {len(keys) - limit} more"] if len(keys) > limit else [])


def recorded_identity(directory: Path) -> dict | None:
    """The identity a run directory was started with; for a directory written before identities
    were recorded, the one its ``config.json`` implies (config only). None for a fresh directory."""
    if (directory / IDENTITY_FILE).is_file():
        return json.loads((directory / IDENTITY_FILE).read_text())["identity"]
    if (directory / "config.json").is_file():
        return {"config": _prune(json.loads((directory / "config.json").read_text()), COSMETIC)}
    return None


def matches(directory: Path, identity: dict) -> tuple[bool, list[str]]:
    """Whether ``directory`` holds a run of ``identity`` (or nothing yet), and what differs if not.
    A legacy directory (no ``identity.json``) is compared on its config alone."""
    recorded = recorded_identity(directory)
    if recorded is None:
        return True, []
    current = identity if "tasks" in recorded else {"config": identity["config"]}
    if identity_hash(recorded) == identity_hash(current):
        return True, []
    return False, differences(recorded, current)


def claim(directory: Path, identity: dict) -> None:
    """Refuse a directory of another run (``RunConflict``, naming the differing keys); otherwise
    record ``identity`` there."""
    same, diff = matches(directory, identity)
    if not same:
        raise RunConflict(f"{directory} holds a run of another configuration; what differs (recorded → now):\n  "
                          + "\n  ".join(diff) + "\nGive the run a new name (name=...), or pass --overwrite "
                          "to delete that run and start this one in its place.")
    if not (directory / IDENTITY_FILE).is_file():
        atomic_write_json(directory / IDENTITY_FILE, {"hash": identity_hash(identity), "identity": identity})


def is_stale(config: ExperimentConfig, directory: Path) -> bool:
    """Whether ``directory`` (the config's run directory) holds a run of another configuration."""
    return directory.is_dir() and not matches(directory, run_identity(config))[0]


def row_keys(task: Task, split: str, examples, root: str | Path | None = None) -> set[str]:
    """One key per example: its source's digest and its row number (from the example id)."""
    digest = source_digest(task, split, root, with_rows=False)  # a file's rows, whichever slice reads them
    return {f"{digest}#{example.id.rsplit(':', 1)[-1]}" for example in examples}
