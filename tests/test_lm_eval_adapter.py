"""lm-eval adapter (benchmarks/lm_eval_adapter.py): real lm-eval, real SmolLM2, local task files.

A rank-2 LoReFT (random init, untied f1+l1 on two layers) and a peft LoRA (random B, so it is
not the identity) are saved with ``save_method`` and scored through lm-eval on tasks whose YAMLs
and JSONL data the test writes (8 ARC-Easy rows), offline. The adapter's loglikelihoods must
equal a direct computation: one unbatched forward of the wrapped model with the interventions
placed by hand on the context's first and last tokens.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")  # before datasets is imported (lm-eval imports it)
lm_eval = pytest.importorskip("lm_eval", reason="the lm-eval extra: pip install -e '.[lm-eval]'")

from conftest import SMOLLM2, saved_smollm2_method  # noqa: E402

ARC = Path("/work/shared/data/llm-adapters/dataset/ARC-Easy/test.json")
CHOICES = ["answer1", "answer2", "answer3", "answer4"]
LOREFT = {"name": "loreft", "rank": 2, "positions": "f1+l1", "tied": False, "layers": [2, 20]}
LORA = {"name": "lora", "r": 2, "target_modules": ["q_proj", "v_proj"], "init_lora_weights": False}
N_DOCS = 8

TASKS = """\
task: {name}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
  cache_dir: {cache}
test_split: test
doc_to_text: "{{{{instruction}}}}\\n\\nAnswer:"
"""
MC_TASK = TASKS + """\
output_type: multiple_choice
doc_to_choice: choices
doc_to_target: label
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
"""
GEN_TASK = TASKS + """\
output_type: generate_until
doc_to_target: " the correct answer is {{{{answer}}}}"
generation_kwargs:
  until: ["\\n"]
  max_gen_toks: 6
  do_sample: false
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
"""


def _rows() -> list[dict]:
    if ARC.is_file():
        rows = json.loads(ARC.read_text())[:N_DOCS]
    else:  # the shared data is not on every machine: the same format, made up
        rows = [{"instruction": f"Please choose the correct answer to the question: {i} + 1 = ?\n\n"
                                f"Answer1: {i + 1} Answer2: {i} Answer3: {i + 2} Answer4: {i + 3}\n\n"
                                "Answer format: answer1/answer2/answer3/answer4",
                 "answer": "answer1"} for i in range(N_DOCS)]
    return [{"instruction": row["instruction"], "answer": row["answer"], "choices": CHOICES,
             "label": CHOICES.index(row["answer"])} for row in rows]


@pytest.fixture(scope="module")
def task_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lm_eval_tasks")
    data = root / "arc_easy.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in _rows()))
    tasks = root / "tasks"
    tasks.mkdir()
    for name, template in (("reft_arc_mc", MC_TASK), ("reft_arc_gen", GEN_TASK)):
        (tasks / f"{name}.yaml").write_text(template.format(name=name, data=data, cache=root / "hf_cache"))
    return tasks


@pytest.fixture(scope="module")
def tokenizer():
    from reft.pretrained import load_tokenizer

    return load_tokenizer(SMOLLM2)


@pytest.fixture(scope="module")
def loreft(tmp_path_factory):
    """(wrapped, checkpoint): a random-init LoReFT on SmolLM2, saved with save_method."""
    return saved_smollm2_method(LOREFT, tmp_path_factory.mktemp("loreft"))


def _task_manager(task_dir):
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(task_dir), include_defaults=False)


def _encode_pair(tokenizer, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """Training's split (reft.data.split_pair), which the adapter uses instead of lm-eval's."""
    from reft.data import split_pair

    return split_pair(tokenizer, context, continuation)


def _direct_logprob(model, ctx: list[int], cont: list[int], **call) -> float:
    """Sum of the continuation's token logprobs from one unbatched, unpadded forward."""
    ids = torch.tensor([ctx + cont])
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=torch.ones_like(ids), **call).logits[0].float()
    logprobs = logits[len(ctx) - 1:len(ctx) + len(cont) - 1].log_softmax(-1)
    return float(logprobs.gather(-1, torch.tensor(cont)[:, None]).sum())


def _context_locations(n_ctx: int) -> torch.Tensor:
    """Untied f1+l1 by hand: group 'first' edits token 0, group 'last' the context's last token
    (a one-token context has no room for a prefix: the paper's short-prompt rule gives it to 'last')."""
    return torch.tensor([[[0 if n_ctx > 1 else -1], [n_ctx - 1]]])


def _instances(pairs, kind="loglikelihood"):
    from lm_eval.api.instance import Instance

    return [Instance(request_type=kind, doc={}, arguments=args, idx=i) for i, args in enumerate(pairs)]


PAIRS = [
    ("Question: what colour is the sky?\nAnswer:", " blue"),
    ("Question: what colour is the sky?\nAnswer:", " green"),  # same context, one-token continuations
    ("The cat sat", " on the mat."),
    ("The cat sat on", " the mat."),  # the same tokens as the previous pair, split later
    ("A much longer context, so that this batch holds rows of very different lengths and needs padding. ",
     "It ends here."),  # trailing space: lm-eval would move it into the continuation
    ("Short", " one"),
]


def test_loglikelihood_equals_direct_computation_on_context_positions(loreft, tokenizer):
    from benchmarks.lm_eval_adapter import ReftLM

    wrapped, _ = loreft
    # pairs 2 and 3 are the same tokens split at different places: different ReFT prompts
    assert sum(_encode_pair(tokenizer, *PAIRS[2]), []) == sum(_encode_pair(tokenizer, *PAIRS[3]), [])
    expected = []
    for context, continuation in PAIRS:
        ctx, cont = _encode_pair(tokenizer, context, continuation)
        expected.append(_direct_logprob(wrapped, ctx, cont, intervention_locations=_context_locations(len(ctx))))
    for padding_side in ("right", "left"):  # batches of 4 with rows of different lengths
        lm = ReftLM(wrapped=wrapped, tokenizer=tokenizer, batch_size=4, padding_side=padding_side)
        got = lm.loglikelihood(_instances(PAIRS), disable_tqdm=True)
        assert [logprob for logprob, _ in got] == pytest.approx(expected, abs=2e-3), padding_side
        assert all(isinstance(greedy, bool) for _, greedy in got)
    # lm-eval's left truncation: the prompt is what is left of the context
    ctx, cont = _encode_pair(tokenizer, *PAIRS[4])
    window = (ctx + cont)[-8:]
    short_ctx = window[:len(window) - len(cont)]
    assert 1 < len(short_ctx) < len(ctx)
    (truncated, _), = ReftLM(wrapped=wrapped, tokenizer=tokenizer, max_length=7).loglikelihood(
        _instances([PAIRS[4]]), disable_tqdm=True)
    assert truncated == pytest.approx(_direct_logprob(wrapped, short_ctx, cont,
                                                      intervention_locations=_context_locations(len(short_ctx))),
                                      abs=2e-3)
    # the interventions matter, and they sit on the context, not on the whole scored input
    # (context + continuation[:-1], what a ReftModel called without prompt_lengths would take)
    ctx, cont = _encode_pair(tokenizer, *PAIRS[2])
    base = _direct_logprob(wrapped.model, ctx, cont)
    whole_input = _direct_logprob(wrapped, ctx, cont,
                                  intervention_locations=torch.tensor([[[0], [len(ctx) + len(cont) - 2]]]))
    assert abs(got[2][0] - base) > 1e-2
    assert abs(got[2][0] - whole_input) > 1e-2


def test_rolling_and_generation_match_the_wrapped_model(loreft, tokenizer):
    from benchmarks.lm_eval_adapter import ReftLM

    wrapped, _ = loreft
    lm = ReftLM(wrapped=wrapped, tokenizer=tokenizer, batch_size=2)
    texts = ["The quick brown fox jumps over the lazy dog.", "Hello"]
    rolling = lm.loglikelihood_rolling(_instances([(t,) for t in texts], "loglikelihood_rolling"), disable_tqdm=True)
    for text, logprob in zip(texts, rolling):  # one window: the prefix token is the context
        tokens = tokenizer.encode(text)
        expected = _direct_logprob(wrapped, [lm.prefix_token_id], tokens, prompt_lengths=torch.tensor([1]))
        assert logprob == pytest.approx(expected, abs=2e-3)

    prompts = ["Question: what is the capital of France?\nAnswer:", "Write a word:"]
    kwargs = {"until": ["\n"], "max_gen_toks": 6, "do_sample": False}
    generated = lm.generate_until(_instances([(p, kwargs) for p in prompts], "generate_until"), disable_tqdm=True)
    for prompt, text in zip(prompts, generated):
        ids = torch.tensor([tokenizer.encode(prompt)])
        with torch.no_grad():
            out = wrapped.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=6,
                                   do_sample=False, pad_token_id=tokenizer.pad_token_id)
        assert text == tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True).split("\n")[0]


def test_evaluate_checkpoint_scores_a_saved_loreft(loreft, tokenizer, task_dir):
    from benchmarks.lm_eval_adapter import evaluate_checkpoint

    wrapped, checkpoint = loreft
    results = evaluate_checkpoint(SMOLLM2, checkpoint, ["reft_arc_mc", "reft_arc_gen"], task_dir=task_dir,
                                  limit=N_DOCS, include_defaults=False, batch_size=4, device="cpu",
                                  bootstrap_iters=0, log_samples=True)
    assert 0.0 <= results["results"]["reft_arc_mc"]["acc,none"] <= 1.0
    assert 0.0 <= results["results"]["reft_arc_gen"]["exact_match,none"] <= 1.0
    assert results["config"]["method"]["name"] == "loreft"
    samples = results["samples"]["reft_arc_mc"]
    assert len(samples) == N_DOCS
    sample = samples[0]  # the logged loglikelihoods are the saved-then-loaded model's
    for (context, continuation), response in zip(sample["arguments"], sample["resps"]):
        ctx, cont = _encode_pair(tokenizer, context, continuation)
        expected = _direct_logprob(wrapped, ctx, cont, intervention_locations=_context_locations(len(ctx)))
        assert float(response[0][0]) == pytest.approx(expected, abs=2e-3)
    assert all(isinstance(s["resps"][0][0], str) for s in results["samples"]["reft_arc_gen"])


def test_peft_lora_checkpoint_scores_through_the_cli_constructor(tmp_path, tokenizer, task_dir):
    from baselines import build_method, save_method
    from lm_eval.api.registry import get_model
    from reft.pretrained import load_model

    import benchmarks.lm_eval_adapter  # noqa: F401  (registers "reft")

    torch.manual_seed(0)
    _, wrapped = build_method(load_model(SMOLLM2), LORA)
    wrapped.eval()
    save_method(wrapped, tmp_path / "lora")
    lm = get_model("reft").create_from_arg_string(f"base={SMOLLM2},checkpoint={tmp_path / 'lora'},batch_size=4",
                                                  {"device": "cpu"})
    results = lm_eval.simple_evaluate(model=lm, tasks=["reft_arc_mc"], limit=4, bootstrap_iters=0,
                                      task_manager=_task_manager(task_dir))
    assert 0.0 <= results["results"]["reft_arc_mc"]["acc,none"] <= 1.0
    assert results["config"]["method"]["name"] == "lora"
    (logprob, _), = lm.loglikelihood(_instances([PAIRS[2]]), disable_tqdm=True)
    ctx, cont = _encode_pair(tokenizer, *PAIRS[2])
    assert logprob == pytest.approx(_direct_logprob(wrapped, ctx, cont), abs=2e-3)
    with wrapped.disable_adapter():
        assert abs(logprob - _direct_logprob(wrapped, ctx, cont)) > 1e-2  # random B: not the base model


DIREFT = {"name": "direft", "rank": 2, "positions": "l1", "layers": [3, 15]}


@pytest.mark.parametrize("spec", [LOREFT, DIREFT, LORA], ids=lambda spec: spec["name"])
def test_loglikelihood_equals_the_projects_scoring_on_prompts_ending_in_newline(spec, tokenizer):
    """Issue 18.1: lm-eval's ``_encode_pair`` moves a context's trailing ``\n`` into the continuation,
    so the last prompt token the interventions were trained on would leave the prompt. The adapter
    splits as training does: its loglikelihood equals ``score_pairs`` (the project's scorer) on the
    project's own BoolQ prompts, which all end in ``\n``."""
    from lm_eval.api.model import TemplateLM

    from baselines import build_method
    from benchmarks.experiments.likelihood import option_target, options, score_pairs
    from benchmarks.lm_eval_adapter import ReftLM
    from benchmarks.tasks import get_task
    from reft.pretrained import load_model

    examples = get_task("commonsense/boolq").load("test")[:2]
    pairs = [(e.prompt, option_target(e, option)) for e in examples for option in options(e)]
    assert all(prompt.endswith("\n") for prompt, _ in pairs)
    torch.manual_seed(0)
    _, wrapped = build_method(load_model(SMOLLM2), spec)
    if spec["name"] != "lora":
        for param in wrapped.interventions.parameters():
            param.data.normal_(0, 0.05)  # far from the identity: a shifted position changes the score
    wrapped.eval()
    lm = ReftLM(wrapped=wrapped, tokenizer=tokenizer, batch_size=1)
    got = [logprob for logprob, _ in lm.loglikelihood(_instances(pairs), disable_tqdm=True)]
    assert got == pytest.approx(score_pairs(wrapped, tokenizer, pairs, batch_size=1), abs=1e-5)
    # lm-eval's own split drops the trailing newline from the context
    lm_eval_ctx, _ = TemplateLM._encode_pair(lm, *pairs[0])
    assert len(lm_eval_ctx) == len(tokenizer(pairs[0][0])["input_ids"]) - 1
    if spec["name"] != "lora":  # and that would score something else
        shifted = _direct_logprob(wrapped, *TemplateLM._encode_pair(lm, *pairs[0]),
                                  prompt_lengths=torch.tensor([len(lm_eval_ctx)]))
        assert abs(shifted - got[0]) > 1e-2
