"""Shared fixtures: tiny random models built from configs, and the real SmolLM2 / MiniLM models."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
torch.set_num_threads(min(2, torch.get_num_threads()))

SMOLLM2 = "pypi:smollm2-135m-instruct"
MINILM = "pypi:all-minilm-l6-v2"


def tiny_llama(seed: int = 0, layers: int = 4, hidden: int = 64, vocab: int = 128):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                         num_attention_heads=4, num_key_value_heads=2, vocab_size=vocab,
                         max_position_embeddings=256, pad_token_id=0, bos_token_id=1, eos_token_id=2)
    return LlamaForCausalLM(config).eval()


def toy_dataset(n: int = 12):
    """Random-token prompts with short fixed-vocabulary responses (ids 7..11, 9, eos 2)."""
    from reft.data import TokenizedExample

    generator = torch.Generator().manual_seed(0)
    examples = []
    for i in range(n):
        prompt = torch.randint(3, 128, (4 + i % 3,), generator=generator).tolist()
        response = [7 + i % 5, 9, 2]
        examples.append(TokenizedExample(prompt + response, [-100] * len(prompt) + response, len(prompt)))
    return examples


@pytest.fixture
def llama():
    return tiny_llama()


@pytest.fixture(scope="session")
def smollm2_tokenizer():
    from reft.pretrained import load_tokenizer

    return load_tokenizer(SMOLLM2)


@pytest.fixture(scope="session")
def smollm2_path():
    from reft.pretrained import resolve

    return resolve(SMOLLM2)


@pytest.fixture
def smollm2(smollm2_path):
    """A fresh copy of SmolLM2-135M-Instruct (about 2 s from the cache)."""
    from reft.pretrained import load_model

    return load_model(SMOLLM2).eval()


@pytest.fixture(scope="session")
def slurm_cluster():
    """A real single-node SLURM cluster on localhost (slurm/local_cluster.py), shared by the session.

    Skipped when SLURM is not installed or we are not root, unless REFT_REQUIRE_SLURM=1 (set by
    .ci/run): then a missing SLURM fails the test instead. ``SLURM_CONF`` (and a ``PATH`` with an
    squeue-backed ``sacct``) are set in os.environ while it lives.
    """
    import sys
    from pathlib import Path

    repo = str(Path(__file__).resolve().parents[1])
    if repo not in sys.path:  # `slurm` is not an installed package: import it from the checkout
        sys.path.insert(0, repo)
    from slurm.local_cluster import LocalSlurmCluster

    ok, reason = LocalSlurmCluster.available()
    if not ok:
        if os.environ.get("REFT_REQUIRE_SLURM") == "1":
            pytest.fail(f"REFT_REQUIRE_SLURM=1 but no local SLURM cluster: {reason}", pytrace=False)
        pytest.skip(reason)
    with LocalSlurmCluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory, smollm2_tokenizer):
    """A tiny random LLaMA (2 layers, hidden 32) saved with SmolLM2's real tokenizer: a model folder
    any experiment config can name (``model.name=<dir>``) and train in well under a second."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    tok = smollm2_tokenizer
    config = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, vocab_size=len(tok), max_position_embeddings=512,
                         pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         tie_word_embeddings=True)
    directory = tmp_path_factory.mktemp("tiny-llama")
    LlamaForCausalLM(config).save_pretrained(directory)
    tok.save_pretrained(directory)
    return directory


def saved_smollm2_method(spec: dict, directory):
    """A method with a seeded random initialisation on the real SmolLM2, in eval mode, saved with
    ``save_method`` into ``directory``: (wrapped, directory). Tests that score a checkpoint use it."""
    from baselines import build_method, save_method
    from reft.pretrained import load_model

    torch.manual_seed(0)
    _, wrapped = build_method(load_model(SMOLLM2), spec)
    wrapped.eval()
    save_method(wrapped, directory)
    return wrapped, directory


def wandb_records(path):
    """The protobuf records of an offline W&B run file (``run-*.wandb``: W&B's 7-byte header, then
    LevelDB's log format: 32 KiB blocks of chunks with a 7-byte header each)."""
    import wandb.proto.wandb_internal_pb2 as pb

    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    pos, block, pending, chunks = 7, 32768, b"", []
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:  # the block's tail is padding
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind == 1:
            chunks.append(chunk)
        elif kind == 2:
            pending = chunk
        elif kind == 3:
            pending += chunk
        elif kind == 4:
            chunks.append(pending + chunk)
    records = []
    for chunk in chunks:
        record = pb.Record()
        record.ParseFromString(chunk)
        records.append(record)
    return records
