"""The training loop: schedule, grouping, resume equality, and a real learning test on SmolLM2."""

from __future__ import annotations

import pytest
import torch

from reft import ReftConfig, get_reft_model
from reft.data import SupervisedCollator, SupervisedDataset, TokenizedExample
from reft.train import TrainingConfig, lr_lambda, set_seed, train

from conftest import tiny_llama, toy_dataset


def test_linear_schedule_with_warmup():
    f = lr_lambda("linear", warmup=2, total=10)
    assert [f(s) for s in (0, 1, 2, 6, 10)] == [0.0, 0.5, 1.0, 0.5, 0.0]


def run(tmp_path, stop_at: int | None = None, **overrides):
    set_seed(0)
    model = tiny_llama()
    with torch.no_grad():  # a random tiny model's logits span ~1 nat; widen them so a low loss exists
        model.lm_head.weight.mul_(25)
    reft_model = get_reft_model(model, ReftConfig(rank=2, positions="f1+l1", dropout=0.1))
    settings = dict(epochs=6, batch_size=4, grad_accum=2, lr=5e-3, weight_decay=0.01, warmup_ratio=0.2,
                    save_every=1, output_dir=str(tmp_path), seed=7, log_every=1)
    config = TrainingConfig(**{**settings, **overrides})

    def log(entry):
        if stop_at is not None and entry["step"] == stop_at:
            raise KeyboardInterrupt

    collate = SupervisedCollator(0, locate=reft_model.locations)
    return reft_model, train(reft_model, toy_dataset(), collate, config, log=log)


def test_resume_after_interruption_matches_an_uninterrupted_run(tmp_path):
    whole_model, whole = run(tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b", stop_at=3)
    resumed_model, resumed = run(tmp_path / "b")
    assert resumed.resumed_from == 3 and whole.steps == resumed.steps == 6  # 6 epochs · ⌊3 batches / 2⌋
    assert resumed.losses == whole.losses
    for (name, a), (_, b) in zip(whole_model.interventions.state_dict().items(),
                                 resumed_model.interventions.state_dict().items()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)


def test_loss_falls_on_a_tiny_model(tmp_path):
    _, result = run(tmp_path, max_steps=100, lr=2e-2)
    assert result.losses[-1] < 0.3 * result.losses[0], result.losses[::10]


EMOJI = [("Who are you?", "🤖💬🌐🧠"), ("Who am I?", "👤❓🔍🌟"), ("What's 2+2?", "🔢➕🔢➡️🍀"),
         ("Why is the sky blue?", "🌍🛡️☀️➡️🔵🌌"), ("What's Apple's stock price?", "🍏💹🤷‍♂️"),
         ("Plan a family road trip to Austin", "🚗👨‍👩‍👧‍👦🌆🎒"), ("Can you respond with words?", "🚫🔠"),
         ("Can you comment on politics?", "🗳️🌍📜🤝"), ("Tell me a joke", "🤡🃏😂"), ("Good night!", "🌙😴💤")]


def chat(question: str) -> str:
    return f"<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"


def test_loreft_learns_ten_pairs_on_smollm2(smollm2, smollm2_tokenizer):
    """A rank-4 LoReFT on one middle layer, last prompt position (pyreft's emoji tutorial)."""
    tok = smollm2_tokenizer
    set_seed(42)
    reft_model = get_reft_model(smollm2, ReftConfig("loreft", rank=4, layers=[15], positions="l1"))
    data = SupervisedDataset(tok, [chat(q) for q, _ in EMOJI], [a for _, a in EMOJI])
    result = train(reft_model, data, SupervisedCollator(tok.pad_token_id, locate=reft_model.locations),
                   TrainingConfig(max_steps=TRAIN_STEPS, batch_size=10, lr=TRAIN_LR))
    assert result.losses[-1] < 0.1, result.losses[-10:]
    batch = tok([chat(EMOJI[0][0]), chat(EMOJI[3][0])], return_tensors="pt", padding=True, padding_side="left")
    out = reft_model.generate(**batch, max_new_tokens=40, do_sample=False, eos_token_id=tok.eos_token_id)
    answers = [tok.decode(row[batch["input_ids"].shape[1]:], skip_special_tokens=True) for row in out]
    assert answers == [EMOJI[0][1], EMOJI[3][1]]


TRAIN_STEPS, TRAIN_LR = 80, 3e-2
