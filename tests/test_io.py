"""Save / load: safetensors + JSON, identical logits, nothing unpickled, every type reloadable."""

from __future__ import annotations

import json
import pickle

import pytest
import torch

from reft import INTERVENTIONS, ReftConfig, ReftModel, get_reft_model

from conftest import tiny_llama


@pytest.fixture
def forbid_pickle(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("loading must not unpickle")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(torch, "load", refuse)


@pytest.mark.parametrize("name", sorted(INTERVENTIONS))
def test_round_trip_gives_identical_logits(name, tmp_path, forbid_pickle):
    config = ReftConfig(name, rank=3, layers=[0, 3], positions="f2+l2", tied=False, dropout=0.1,
                        intervention_kwargs={"add_bias": True} if name == "noreft" else {})
    torch.manual_seed(1)
    reft_model = get_reft_model(tiny_llama(), config).eval()
    reft_model.save_pretrained(tmp_path / "ckpt", note="test")
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["interventions.safetensors", "reft_config.json"]
    saved = json.loads((tmp_path / "ckpt" / "reft_config.json").read_text())
    assert saved["reft_version"] and saved["config"]["intervention"] == name and saved["metadata"] == {"note": "test"}
    torch.manual_seed(99)  # the loaded model starts from different random interventions
    loaded = ReftModel.from_pretrained(tiny_llama(), tmp_path / "ckpt").eval()
    ids = torch.randint(3, 128, (2, 10))
    torch.testing.assert_close(loaded(input_ids=ids).logits, reft_model(input_ids=ids).logits, rtol=0, atol=0)
    assert loaded.config == config


def test_unfrozen_base_parameters_travel_too(tmp_path, forbid_pickle):
    model = tiny_llama()
    reft_model = get_reft_model(model, ReftConfig(rank=2, layers=[1]))
    model.lm_head.weight.requires_grad_(True)
    with torch.no_grad():
        model.lm_head.weight.mul_(2)
    reft_model.save_pretrained(tmp_path)
    loaded = ReftModel.from_pretrained(tiny_llama(), tmp_path)
    torch.testing.assert_close(loaded.model.lm_head.weight, model.lm_head.weight)
    assert loaded.model.lm_head.weight.requires_grad


def test_bf16_interventions_keep_their_dtype(tmp_path):
    reft_model = get_reft_model(tiny_llama(), ReftConfig("direft", rank=2, dtype="bfloat16"))
    reft_model.save_pretrained(tmp_path)
    loaded = ReftModel.from_pretrained(tiny_llama(), tmp_path)
    assert loaded.interventions["layer0"].learned_source.weight.dtype == torch.bfloat16


def test_missing_or_foreign_directories_fail_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="reft_config.json"):
        ReftModel.from_pretrained(tiny_llama(), tmp_path)
    (tmp_path / "reft_config.json").write_text(json.dumps({"config": {"rank": 2, "colour": "red"}}))
    with pytest.raises(ValueError, match=r"unknown ReftConfig key\(s\) \['colour'\]"):
        ReftModel.from_pretrained(tiny_llama(), tmp_path)


# ---------------------------------------------------------------- damaged saves, other models (issue 16)
def test_a_checkpoint_onto_a_model_of_another_size_names_both(tmp_path):
    reft_model = get_reft_model(tiny_llama(), ReftConfig("loreft", rank=2, layers="all", positions="l1"))
    reft_model.save_pretrained(tmp_path / "ckpt")
    base = json.loads((tmp_path / "ckpt" / "reft_config.json").read_text())["base"]
    assert base == {"name": "", "model_type": "llama", "hidden_size": 64, "num_layers": 4}
    with pytest.raises(ValueError, match=r"was trained on a model \(llama, hidden size 64, 4 layers\); it is being "
                                         r"loaded onto a model \(llama, hidden size 32, 2 layers\)"):
        ReftModel.from_pretrained(tiny_llama(layers=2, hidden=32), tmp_path / "ckpt")


@pytest.mark.parametrize("damage", ["truncated", "not safetensors", "empty"])
def test_a_damaged_weights_file_is_named(tmp_path, damage):
    reft_model = get_reft_model(tiny_llama(), ReftConfig("loreft", rank=2, layers=[1], positions="l1"))
    reft_model.save_pretrained(tmp_path / "ckpt")
    weights = tmp_path / "ckpt" / "interventions.safetensors"
    content = weights.read_bytes()
    weights.write_bytes({"truncated": content[: len(content) // 2], "not safetensors": b"PK\x03\x04 a zip file",
                         "empty": b""}[damage])
    with pytest.raises(ValueError, match=r"interventions\.safetensors is damaged or not a safetensors file"):
        ReftModel.from_pretrained(tiny_llama(), tmp_path / "ckpt")


@pytest.mark.parametrize("spec", [{"name": "lora", "r": 2, "target_modules": ["q_proj"]},
                                  {"name": "loreft", "rank": 2, "layers": [1], "positions": "l1"}],
                         ids=["lora", "loreft"])
def test_load_method_onto_another_model_names_the_save(tmp_path, spec):
    from baselines import build_method, load_method, save_method

    _, wrapped = build_method(tiny_llama(), spec)
    save_method(wrapped, tmp_path / "save")
    assert json.loads((tmp_path / "save" / "base_model.json").read_text())["hidden_size"] == 64
    with pytest.raises(ValueError, match=r"save was trained on a model \(llama, hidden size 64, 4 layers\); it is "
                                         r"being loaded onto a model \(llama, hidden size 32, 2 layers\)"):
        load_method(tiny_llama(layers=2, hidden=32), tmp_path / "save")
    (tmp_path / "save" / "base_model.json").unlink()  # a save from before base_model.json: torch's error, named
    with pytest.raises(ValueError, match="does not fit|was trained on"):  # ReFT: reft_config.json records it too
        load_method(tiny_llama(layers=4, hidden=32), tmp_path / "save")
