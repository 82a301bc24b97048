"""Every shipped experiment YAML runs through the real code path on a tiny model (issue 17.1).

A paper configuration names LLaMA-7B, Llama-2-7B or RoBERTa-large; nobody runs those here, so a
renamed key, a layer list that no longer fits or a target module the architecture lacks would rot
unseen. Each YAML under ``benchmarks/experiments`` is run by ``run_experiment`` with its own method
block, dtype, prompt, decoding and evaluation code, on a tiny random model **of the same
architecture family** (the config's model shrunk to 2 layers, hidden size 64, the same module names;
the real SmolLM2 tokenizer for LLaMA-family models, MiniLM's for BERT and RoBERTa) for 2 optimizer
steps and 2 evaluation rows per task. It asserts a finite loss, a trainable tensor that changed, a
written result and the Params% formula.

What the smoke run changes, and why (the rest is the YAML's):

* **model**: the tiny model of the family (``FAMILIES``); **layers** listed explicitly scale with
  depth: layer ``l`` of an ``L``-layer model becomes ``l * 2 // L`` of the 2 (``"3;9;18;24"`` of
  LLaMA-7B's 32 → ``[0, 1]``); ``all`` stays ``all``;
* **data**: training sets that are not offline are replaced by an offline set of the same suite and
  format (``STAND_INS``: COMMONSENSE-170K → BoolQ, MATH-10K → its 919-row part, UltraFeedback →
  its 1K subset); evaluation sets that are not offline are left out (a YAML left with none fails);
* **scale**: 4 training rows, 2 steps, batch 2, 2 scored rows per task, 4 new tokens; AlpacaEval's
  judge is the offline ``length`` judge (GPT-4 needs the network); W&B off.

A new YAML is covered without editing this file (the parametrisation globs the folder).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from baselines import build_method, count_parameters, load_method
from benchmarks.experiments.config import load_experiment
from benchmarks.experiments.run import run_experiment
from benchmarks.tasks import get_task
from reft.pretrained import load_model
from reft.train import set_seed

from conftest import MINILM, SMOLLM2

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
YAMLS = sorted((REPO / "benchmarks" / "experiments").glob("*/*.yaml"))
#: model → (architecture family, depth of the real model)
FAMILIES = {"yahma/llama-7b-hf": ("llama", 32), "meta-llama/Llama-2-7b-hf": ("llama", 32),
            "pypi:smollm2-135m-instruct": ("llama", 30), "FacebookAI/roberta-base": ("roberta", 12),
            "FacebookAI/roberta-large": ("roberta", 24), "pypi:all-minilm-l6-v2": ("bert", 6)}
STAND_INS = {"commonsense/commonsense_170k": "commonsense/boolq", "arithmetic/math_10k": "arithmetic/math_1k",
             "instruction/ultrafeedback": "instruction/ultrafeedback_1k"}
TINY = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 128}

pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"{DATA} not found (shared/ beside the repository)")


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """family → a folder with a tiny random model of that family and a real tokenizer."""
    from transformers import (BertConfig, BertForSequenceClassification, LlamaConfig, LlamaForCausalLM,
                              RobertaConfig, RobertaForSequenceClassification)

    from reft.pretrained import load_tokenizer

    llama_tokenizer, bert_tokenizer = load_tokenizer(SMOLLM2), load_tokenizer(MINILM)
    torch.manual_seed(0)
    built = {
        "llama": (LlamaForCausalLM(LlamaConfig(**TINY, num_key_value_heads=2, vocab_size=len(llama_tokenizer),
                                               max_position_embeddings=1024, pad_token_id=llama_tokenizer.pad_token_id,
                                               bos_token_id=llama_tokenizer.bos_token_id,
                                               eos_token_id=llama_tokenizer.eos_token_id)), llama_tokenizer),
        "bert": (BertForSequenceClassification(BertConfig(**TINY, vocab_size=len(bert_tokenizer))), bert_tokenizer),
        "roberta": (RobertaForSequenceClassification(RobertaConfig(
            **TINY, vocab_size=len(bert_tokenizer), pad_token_id=bert_tokenizer.pad_token_id,
            max_position_embeddings=600)), bert_tokenizer),
    }
    folders = {}
    for family, (model, tokenizer) in built.items():
        folders[family] = tmp_path_factory.mktemp(f"tiny-{family}")
        model.save_pretrained(folders[family])
        tokenizer.save_pretrained(folders[family])
    return folders


def offline(task_key: str, split: str) -> bool:
    source = get_task(task_key).splits.get(split)
    return source is not None and (getattr(source, "path", None) is None or (DATA / source.path).is_file())


def scaled_layers(layers, depth: int):
    """An explicit layer list of a ``depth``-layer model mapped onto the 2 tiny layers."""
    if layers == "all":
        return "all"
    listed = [int(l) for l in layers.split(";")] if isinstance(layers, str) else list(layers)
    return sorted({l * 2 // depth for l in listed})


def smoke_overrides(path: Path, folders: dict[str, Path], root: Path) -> list[str]:
    config = load_experiment(path, [])
    family, depth = FAMILIES[config.model.name]
    train = [STAND_INS.get(key, key) for key in config.data.train]
    assert all(offline(key, config.data.train_split) for key in train), f"{path}: no offline stand-in for {train}"
    scored = [key for key in config.data.eval if offline(key, "validation" if key.startswith("glue/")
                                                          else config.data.eval_split)]
    assert scored, f"{path}: none of its evaluation sets is offline"
    overrides = [f"model.name={folders[family]}", f"data.train=[{','.join(train)}]", f"data.eval=[{','.join(scored)}]",
                 "data.train_limit=4", "data.eval_limit=2", "train.max_steps=2", "train.batch_size=2",
                 "train.grad_accum=1", "train.save_every=1", "eval.max_new_tokens=4", "eval.batch_size=2",
                 "wandb.mode=disabled", f"output_root={root}", "data.allow_contamination=true"]
    if "layers" in config.method:
        overrides.append(f"method.layers={json.dumps(scaled_layers(config.method['layers'], depth))}")
    if config.suite == "instruction":
        overrides.append("eval.judge=length")
    return overrides


@pytest.mark.parametrize("path", YAMLS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_shipped_config_runs_on_a_tiny_model_of_its_family(path, tiny_models, tmp_path):
    config = load_experiment(path, smoke_overrides(path, tiny_models, tmp_path))
    directory = run_experiment(config, log=lambda *a: None)
    result = json.loads((directory / "result.json").read_text())
    assert set(result["tasks"]) == set(config.data.eval)
    losses = result["train"]["losses"]
    assert all(math.isfinite(loss) for loss in losses)
    params = result["params"]
    if params["trainable"]:
        assert len(losses) == 2
        assert params["percent"] == pytest.approx(100 * params["trainable"] / params["total"], rel=1e-9)
        # a trainable tensor changed: the saved method against the same method freshly built with the run's seed
        model_task = config.model.task
        kwargs = {"num_labels": get_task(config.data.eval[0]).num_labels} if model_task != "causal-lm" else {}
        set_seed(config.seed)
        _, initial = build_method(load_model(config.model.name, task=model_task, dtype=config.model.dtype, **kwargs),
                                  config.method)
        _, trained = load_method(load_model(config.model.name, task=model_task, dtype=config.model.dtype, **kwargs),
                                 directory / "model")
        assert count_parameters(initial).trainable == params["trainable"]  # Params% counts what the method adds
        before = {n: p for n, p in initial.named_parameters() if p.requires_grad}
        after = dict(trained.named_parameters())
        assert any(not torch.equal(before[n].float(), after[n].float()) for n in before if n in after), path


def test_every_shipped_yaml_is_smoke_tested():
    """The list above is the folder: a new config cannot be left out (and the families are known)."""
    assert len(YAMLS) >= 31
    for path in YAMLS:
        assert load_experiment(path, []).model.name in FAMILIES, f"{path}: add its model to FAMILIES"
