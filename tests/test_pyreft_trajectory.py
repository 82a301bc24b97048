"""Training-trajectory parity with pyreft 0.1.0 (issue 16): the same tiny LLaMA, initial
interventions, batches and optimizer as ``tools/pyreft_trajectory.py`` recorded under pyreft itself
(``tests/fixtures/pyreft_trajectory``; regenerate: ``make pyreft-trajectory``). Under ``compat:
pyreft`` (here: R trained through torch's orthogonal parametrization) the harness's own training
loop lands on pyreft's loss at every one of 50 steps within 1e-4; the default Riemannian R does
not, and the test measures by how much."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from reft import ReftConfig, get_reft_model
from reft.train import TrainingConfig, train

FIXTURE = Path(__file__).parent / "fixtures" / "pyreft_trajectory"
RECORD = json.loads((FIXTURE / "trajectory.json").read_text())


def tensor(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32)


def train_here(method: str, rotation_training: str) -> tuple[list[float], list]:
    from transformers import LlamaForCausalLM

    setup, theirs = RECORD["setup"], RECORD["methods"][method]
    model = LlamaForCausalLM.from_pretrained(FIXTURE / "model", attn_implementation="eager")
    reft_model = get_reft_model(model, ReftConfig(
        intervention=method, rank=setup["rank"], layers=setup["layers"], positions=setup["positions"],
        tied=setup["tied"], dropout=0.0, dtype="float32", rotation_training=rotation_training))
    ours = list(reft_model.interventions.values())  # every layer at the first positions, then at the last: pyreft's order
    assert list(reft_model.interventions) == ["layer0_first", "layer1_first", "layer0_last", "layer1_last"]
    with torch.no_grad():
        for mine, initial in zip(ours, theirs["initial"]):
            mine.learned_source.weight.copy_(tensor(initial["learned_source.weight"]))
            mine.learned_source.bias.copy_(tensor(initial["learned_source.bias"]))
            if method == "direft":
                mine.proj_layer.weight.copy_(tensor(initial["proj_layer.weight"]))
            elif rotation_training == "pyreft":
                parts = mine.rotation.layer.parametrizations.weight
                parts.original.copy_(tensor(initial["rotate_layer.parametrizations.weight.original"]))
                parts[0].base.copy_(tensor(initial["rotate_layer.parametrizations.weight.0.base"]))
            else:  # the same starting R: pyreft's P = base[:, :r] while ``original`` is at its start
                base = tensor(initial["rotate_layer.parametrizations.weight.0.base"])
                mine.rotation.weight.copy_(base[:, :setup["rank"]].T)
    ids, labels = torch.tensor(RECORD["input_ids"]), torch.tensor(RECORD["labels"])
    locations = torch.tensor(RECORD["locations"])
    examples = [{"input_ids": ids[i], "attention_mask": torch.ones_like(ids[i]), "labels": labels[i],
                 "intervention_locations": locations[i]} for i in range(len(ids))]

    def collate(batch: list[dict]) -> dict:
        return {key: torch.stack([example[key] for example in batch]) for key in batch[0]}

    result = train(reft_model, examples, collate, TrainingConfig(
        max_steps=setup["steps"], batch_size=setup["batch"], lr=setup["lr"], weight_decay=setup["weight_decay"],
        schedule=setup["schedule"], max_grad_norm=setup["max_grad_norm"], seed=setup["seed"]))
    return result.losses, ours


@pytest.mark.parametrize("method", ["loreft", "direft"])
def test_compat_pyreft_follows_pyrefts_own_training_trajectory(method):
    losses, ours = train_here(method, "pyreft")
    theirs = RECORD["methods"][method]
    gaps = [abs(a - b) for a, b in zip(losses, theirs["losses"])]
    assert len(losses) == len(theirs["losses"]) == 50
    assert max(gaps) < 1e-4, f"largest per-step loss gap {max(gaps):.2e} at step {gaps.index(max(gaps)) + 1}"
    assert theirs["losses"][-1] < theirs["losses"][0] - 0.05  # the run learns: the parity is not of a flat line
    for mine, final in zip(ours, theirs["final"]):
        assert torch.allclose(mine.learned_source.weight.detach(), tensor(final["learned_source.weight"]), atol=1e-4)
        if method == "loreft":
            assert torch.allclose(mine.rotation().detach(), tensor(final["R"]), atol=1e-4)
        else:
            assert torch.allclose(mine.proj_layer.weight.detach(), tensor(final["proj_layer.weight"]), atol=1e-4)


def test_the_default_riemannian_r_leaves_pyrefts_trajectory_by_a_measured_amount(capsys):
    """Same start, same batches: only R's optimisation path differs. The README quotes the gap."""
    losses, ours = train_here("loreft", "riemannian")
    theirs = RECORD["methods"]["loreft"]
    gaps = [abs(a - b) for a, b in zip(losses, theirs["losses"])]
    assert gaps[0] < 1e-5  # step 1 is the same forward from the same start
    assert max(gaps) > 1e-4  # afterwards the paths part
    with capsys.disabled():
        print(f"\ndefault (riemannian) LoReFT vs pyreft: largest per-step loss gap {max(gaps):.2e}, final "
              f"{losses[-1]:.4f} vs {theirs['losses'][-1]:.4f}")
