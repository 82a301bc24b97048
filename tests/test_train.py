"""The training loop: schedule, grouping, resume equality, and a real learning test on SmolLM2."""

from __future__ import annotations

import pytest
import torch

from reft import ReftConfig, get_reft_model
from reft.data import SupervisedCollator, SupervisedDataset, TokenizedExample
from reft.train import LENGTH_GROUP_BATCHES, TrainingConfig, _grouped_by_length, lr_lambda, set_seed, train

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
    # the training time counts the interrupted process's too (up to the checkpoint it resumed from)
    assert whole.total_seconds == whole.seconds and resumed.total_seconds > resumed.seconds > 0
    for (name, a), (_, b) in zip(whole_model.interventions.state_dict().items(),
                                 resumed_model.interventions.state_dict().items()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)


def test_length_grouping_keeps_each_epoch_and_cuts_padding():
    """Each mega-batch of 50 batches is the same examples as the random order's, sorted longest
    first; on lengths like the commonsense mix (40 to 256 tokens) a batch of 8 pads far less."""
    generator = torch.Generator().manual_seed(0)
    lengths = torch.randint(20, 257, (2000,), generator=generator).tolist()
    order = torch.randperm(2000, generator=generator).tolist()
    grouped = _grouped_by_length(order, lengths, global_batch=8)
    size = LENGTH_GROUP_BATCHES * 8
    for first in range(0, 2000, size):
        assert sorted(grouped[first:first + size]) == sorted(order[first:first + size])
        assert [lengths[i] for i in grouped[first:first + size]] == \
            sorted((lengths[i] for i in order[first:first + size]), reverse=True)

    def padded(o):
        return sum(max(lengths[i] for i in o[k:k + 8]) * len(o[k:k + 8]) for k in range(0, len(o), 8))
    assert padded(grouped) < 0.65 * padded(order), (padded(grouped), padded(order))


def test_resume_with_length_grouping_matches_an_uninterrupted_run(tmp_path):
    whole_model, whole = run(tmp_path / "a", group_by_length=True)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b", stop_at=3, group_by_length=True)
    _, resumed = run(tmp_path / "b", group_by_length=True)
    assert resumed.resumed_from == 3 and resumed.losses == whole.losses
    assert whole.losses != run(tmp_path / "c")[1].losses  # the grouped batches are other batches


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


def test_a_torn_checkpoint_is_passed_over_and_the_run_ends_as_an_uninterrupted_one(tmp_path, capsys):
    """The newest checkpoint truncated (a kill mid-write on a filesystem without atomic rename, or
    a damaged disk): resume names it, uses the previous one, and lands on the uninterrupted run."""
    whole_model, whole = run(tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b", stop_at=4)
    steps = sorted((tmp_path / "b" / "checkpoint").glob("step-*"))
    assert [p.name for p in steps] == ["step-00000003", "step-00000004"]  # the two newest are kept
    state = steps[-1] / "state.safetensors"
    state.write_bytes(state.read_bytes()[:100])
    (tmp_path / "b" / "checkpoint" / ".step-00000005.half.tmp").mkdir()  # a save killed midway: ignored
    resumed_model, resumed = run(tmp_path / "b")
    assert "step-00000004 is damaged (state.safetensors does not match its manifest" in capsys.readouterr().out
    assert resumed.resumed_from == 3 and resumed.losses == whole.losses
    for (name, a), (_, b) in zip(whole_model.interventions.state_dict().items(),
                                 resumed_model.interventions.state_dict().items()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)


def test_a_checkpoint_whose_files_disagree_is_refused(tmp_path):
    from reft.checkpoint import CheckpointDamaged, TrainingCheckpoint

    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, stop_at=2)
    first, second = sorted((tmp_path / "checkpoint").glob("step-*"))
    (second / "trainer_state.json").write_text((first / "trainer_state.json").read_text())  # step 1's state
    with pytest.raises(CheckpointDamaged, match="trainer_state.json does not match its manifest"):
        TrainingCheckpoint.verify(second)


@pytest.mark.parametrize("overrides, message", [
    ({"max_steps": -5}, "max_steps must be >= 1"), ({"max_steps": 0}, "max_steps must be >= 1"),
    ({"epochs": 0}, "epochs must be > 0"), ({"lr": 0.0}, "lr must be > 0")])
def test_a_config_that_cannot_train_is_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        TrainingConfig(**overrides)


def test_a_non_finite_loss_fails_the_run(tmp_path):
    from reft.train import TrainingFailed

    with pytest.raises(TrainingFailed, match="loss at optimizer step 1 is nan"):
        _nan_run(tmp_path)


def _nan_run(tmp_path):
    """Every target truncated away: each micro-batch's mean loss is 0/0 = NaN."""
    model = get_reft_model(tiny_llama(), ReftConfig(rank=2, positions="l1"))
    examples = [TokenizedExample(e.input_ids, [-100] * len(e.labels), e.prompt_length) for e in toy_dataset()]
    return train(model, examples, SupervisedCollator(0, locate=model.locations), TrainingConfig(max_steps=3))


def test_an_empty_training_set_fails(tmp_path):
    from reft.train import TrainingFailed

    model = get_reft_model(tiny_llama(), ReftConfig(rank=2, positions="l1"))
    with pytest.raises(TrainingFailed, match="training set is empty"):
        train(model, [], SupervisedCollator(0, locate=model.locations), TrainingConfig(max_steps=3))


def test_bf16_autocast_on_cpu_follows_fp32_losses():
    """Issue 17.4: ``train.autocast: bfloat16`` runs the forward in bf16 on the CPU (weights, grads
    and AdamW stay fp32); on a tiny LLaMA its losses stay within 2% of fp32's over 6 steps."""
    from reft import ReftConfig, get_reft_model
    from reft.data import SupervisedCollator
    from reft.train import TrainingConfig, train

    from conftest import tiny_llama, toy_dataset

    losses = {}
    for autocast in (None, "bfloat16"):
        torch.manual_seed(0)
        model = get_reft_model(tiny_llama(layers=2), ReftConfig(rank=2, layers="all", positions="f1+l1"))
        config = TrainingConfig(max_steps=6, batch_size=4, lr=5e-3, seed=0, log_every=1000, autocast=autocast)
        losses[autocast] = train(model, toy_dataset(), SupervisedCollator(0, model.locations), config).losses
        assert all(p.dtype == torch.float32 for p in model.interventions.parameters())
    assert losses["bfloat16"] != losses[None]  # bf16 really ran
    assert losses["bfloat16"] == pytest.approx(losses[None], rel=0.02)
    with pytest.raises(ValueError, match="train.autocast must be"):
        TrainingConfig(autocast="int8")


@pytest.mark.parametrize("pyreft_eval_dropout", [False, True])
def test_pyreft_eval_dropout_leaves_intervention_dropout_off_after_the_first_evaluation(pyreft_eval_dropout):
    """Issue 16.2: pyreft evaluates after each epoch and never turns intervention dropout back on;
    ``train.pyreft_eval_dropout`` reproduces that, and by default dropout is back on after evaluating."""
    from reft import ReftConfig, get_reft_model
    from reft.data import SupervisedCollator
    from reft.train import TrainingConfig, train

    from conftest import tiny_llama, toy_dataset

    torch.manual_seed(0)
    model = get_reft_model(tiny_llama(layers=2), ReftConfig(rank=2, layers=[1], positions="l1", dropout=0.5))
    seen = []
    next(iter(model.interventions.values())).register_forward_pre_hook(
        lambda module, args: seen.append(module.training) if torch.is_grad_enabled() else None)
    config = TrainingConfig(epochs=2, batch_size=4, lr=1e-3, seed=0, pyreft_eval_dropout=pyreft_eval_dropout)
    train(model, toy_dataset(8), SupervisedCollator(0, model.locations), config, evaluate=lambda m: 0.5)
    first, second = seen[:len(seen) // 2], seen[len(seen) // 2:]
    assert all(first) and len(second) == len(first)
    assert all(not on for on in second) if pyreft_eval_dropout else all(second)


def test_compat_pyreft_sets_the_individual_switches():
    from benchmarks.experiments.config import load_experiment

    path = "benchmarks/experiments/glue/minilm_cpu_loreft.yaml"
    config = load_experiment(path, ["compat=pyreft"])
    assert config.method["short_prompt_rule"] == "pyreft" and config.method["rotation_training"] == "pyreft"
    assert config.train.pyreft_eval_dropout and not config.train.decay_interventions
    assert load_experiment(path, ["compat=pyreft", "method.short_prompt_rule=paper"]).method["short_prompt_rule"] \
        == "paper"  # a method's own setting wins
    lora = load_experiment("benchmarks/experiments/glue/minilm_cpu_lora.yaml", ["compat=pyreft"])
    assert "short_prompt_rule" not in lora.method  # only ReFT methods have positions
    assert load_experiment(path, []).train.pyreft_eval_dropout is False
    with pytest.raises(ValueError, match="compat must be one of"):
        load_experiment(path, ["compat=peft"])
