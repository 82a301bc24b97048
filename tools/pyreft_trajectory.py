"""Record pyreft 0.1.0's own training trajectory, for ``tests/test_pyreft_trajectory.py``.

Runs in a separate virtual environment that holds pyreft 0.1.0 from PyPI (it pins
transformers 4.45.1); imports nothing from this repository. ``make pyreft-trajectory`` builds that
environment (``.venv-pyreft``) and runs this script, which writes ``tests/fixtures/pyreft_trajectory/``:

* ``model/``: a tiny random LLaMA (2 layers, hidden 32, vocab 64), its weights fixed here;
* ``trajectory.json``: the batch (4 sequences of 12 tokens, the first 6 the prompt, labels -100
  there), and per method (LoReFT = ``LoreftIntervention``, DiReFT = ``NodireftIntervention``) the
  interventions' initial state (R's parametrization included: ``original`` and the d×d ``base``),
  the loss of each of 50 optimizer steps, and the final R, W, b.

The setup is the paper's where it matters and small everywhere else: interventions on the block
outputs of layers 0 and 1 at positions f1+l1, untied (4 interventions, as pyreft's training script
orders them: every layer at the first positions, then every layer at the last), rank 2, fp32,
dropout 0 (so no random masks need to line up); pyreft's ``ReftTrainer.compute_loss`` forward
(``unit_locations`` from ``intervention_locations``, the loss of the intervened output); HF's default
optimizer ``adamw_torch`` (AdamW, lr 2e-2, no weight decay), linear decay to 0 over 50 steps,
gradients clipped at norm 1.0. Each step sees the 4 sequences in the order the harness's training
loop draws for it (``reft.train._epoch_order`` with seed 42: a ``torch.randperm`` seeded with
``42 * 1_000_003 + step``), so both sides sum the same batch in the same order.

    .venv-pyreft/bin/python tools/pyreft_trajectory.py tests/fixtures/pyreft_trajectory
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

STEPS, LR, RANK, LAYERS, SEED = 50, 2e-2, 2, [0, 1], 42
VOCAB, HIDDEN, LENGTH, PROMPT, BATCH = 64, 32, 12, 6, 4


def build_model(directory: Path):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                         pad_token_id=0, bos_token_id=1, eos_token_id=2, tie_word_embeddings=False,
                         attn_implementation="eager")
    model = LlamaForCausalLM(config)
    model.save_pretrained(directory, safe_serialization=True)
    return LlamaForCausalLM.from_pretrained(directory, attn_implementation="eager").eval()


def batch_data() -> dict:
    generator = torch.Generator().manual_seed(7)
    input_ids = torch.randint(3, VOCAB, (BATCH, LENGTH), generator=generator)
    labels = input_ids.clone()
    labels[:, :PROMPT] = -100
    # untied f1+l1: group 0 = the first prompt position, group 1 = the last; [batch, groups, width]
    locations = torch.tensor([[[0], [PROMPT - 1]]] * BATCH)
    return {"input_ids": input_ids, "labels": labels, "locations": locations}


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=generator).tolist()


def intervention_state(intervention) -> dict:
    state = {name: tensor.detach().tolist() for name, tensor in intervention.named_parameters()}
    state.update({name: tensor.detach().tolist() for name, tensor in intervention.named_buffers()})
    return state


def final_state(intervention) -> dict:
    final = {"learned_source.weight": intervention.learned_source.weight.detach().tolist(),
             "learned_source.bias": intervention.learned_source.bias.detach().tolist()}
    if hasattr(intervention, "rotate_layer"):
        final["R"] = intervention.rotate_layer.weight.detach().T.tolist()
    else:
        final["proj_layer.weight"] = intervention.proj_layer.weight.detach().tolist()
    return final


def trajectory(model, method: str, data: dict) -> dict:
    import pyreft

    torch.manual_seed(SEED)
    cls = {"loreft": pyreft.LoreftIntervention, "direft": pyreft.NodireftIntervention}[method]
    layers = LAYERS + LAYERS  # untied: every layer for the first positions, then every layer for the last
    representations = [{"layer": layer, "component": "block_output", "low_rank_dimension": RANK,
                        "intervention": cls(embed_dim=HIDDEN, low_rank_dimension=RANK, dropout=0.0,
                                            dtype=torch.float32, act_fn=None, add_bias=False)}
                       for layer in layers]
    reft_model = pyreft.get_reft_model(model, pyreft.ReftConfig(representations=representations),
                                       set_device=False)
    interventions = [reft_model.interventions[key] for key in reft_model.interventions]
    interventions = [i[0] if isinstance(i, (list, tuple)) else i for i in interventions]
    initial = [intervention_state(i) for i in interventions]
    params = [p for i in interventions for p in i.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=LR, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: max(0.0, (STEPS - step) / STEPS))
    reft_model.train()
    losses = []
    for step in range(STEPS):
        order = epoch_order(BATCH, SEED, step)
        ids, labels, locations = (data[k][order] for k in ("input_ids", "labels", "locations"))
        # one location list per intervention, in the representations' order (each group once per layer)
        per_intervention = locations.repeat_interleave(len(LAYERS), dim=1)
        _, outputs = reft_model({"input_ids": ids, "attention_mask": torch.ones_like(ids)},
                                unit_locations={"sources->base": (None, per_intervention.permute(1, 0, 2).tolist())},
                                labels=labels)
        outputs.loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(outputs.loss.item())
    return {"initial": initial, "losses": losses, "final": [final_state(i) for i in interventions],
            "order": "layer 0 first, layer 1 first, layer 0 last, layer 1 last"}


def main(out: str) -> int:
    import pyreft
    import transformers

    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = build_model(out_dir / "model")
    data = batch_data()
    record = {"pyreft": getattr(pyreft, "__version__", "0.1.0"), "transformers": transformers.__version__,
              "torch": torch.__version__.split("+")[0],
              "setup": {"steps": STEPS, "lr": LR, "rank": RANK, "layers": LAYERS, "positions": "f1+l1",
                        "tied": False, "seed": SEED, "batch": BATCH, "schedule": "linear", "max_grad_norm": 1.0,
                        "weight_decay": 0.0},
              "input_ids": data["input_ids"].tolist(), "labels": data["labels"].tolist(),
              "locations": data["locations"].tolist(),
              "methods": {method: trajectory(model, method, data) for method in ("loreft", "direft")}}
    (out_dir / "trajectory.json").write_text(json.dumps(record))
    for method, run in record["methods"].items():
        print(f"{method}: loss {run['losses'][0]:.4f} -> {run['losses'][-1]:.4f} over {STEPS} steps")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/pyreft_trajectory"))
