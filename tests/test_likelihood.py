"""Zero-shot multiple choice by log-likelihood (benchmarks/experiments/likelihood.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from benchmarks.cli import main
from benchmarks.experiments.likelihood import (option_target, option_text, options, question_context,
                                                rank_options)
from benchmarks.tasks import get_task
from reft import ReftConfig, get_reft_model

REPO = Path(__file__).resolve().parents[1]
COMMONSENSE = str(REPO / "benchmarks/experiments/commonsense/smollm2_cpu_none.yaml")


def _examples(key: str, n: int = 3):
    return get_task(key).load("test")[:n]


def test_options_come_from_the_prompts_answer_format_line():
    boolq, arc, wino = _examples("commonsense/boolq", 1)[0], _examples("commonsense/arc_easy", 1)[0], \
        _examples("commonsense/winogrande", 1)[0]
    assert options(boolq) == ["true", "false"]
    assert options(arc) == ["answer1", "answer2", "answer3", "answer4"]
    assert options(wino) == ["option1", "option2"]
    assert option_target(arc, "answer3") == "the correct answer is answer3"


def test_option_texts_are_read_from_the_prompt():
    boolq, arc, wino, piqa = (_examples(f"commonsense/{t}", 1)[0] for t in ("boolq", "arc_easy", "winogrande", "piqa"))
    assert [option_text(boolq, o) for o in options(boolq)] == ["true", "false"]  # their own text
    assert [option_text(arc, o) for o in options(arc)] == [
        "Sunlight is the source of energy for nearly all ecosystems.",
        "Most ecosystems are found on land instead of in water.",
        "Carbon dioxide is more available than other gases.", "The producers in all ecosystems are plants."]
    assert [option_text(wino, o) for o in options(wino)] == ["Sarah", "Maria"]
    assert question_context(arc) == ("Question: Which statement best explains why photosynthesis is the foundation "
                                     "of most food webs?\nAnswer:")
    assert question_context(boolq).startswith("Question: does ethanol take more energy")
    assert question_context(wino) == ("Question: Sarah was a much better surgeon than Maria so _ always got the easier "
                                      "cases.\nAnswer:")
    first, second = (option_text(piqa, o) for o in options(piqa))
    assert first.startswith("Provide the guinea pig") and "Solution2" not in first and first != second


@torch.no_grad()
def _direct_score(model, tokenizer, prompt: str, target: str, **kwargs) -> float:
    p = tokenizer(prompt)["input_ids"]  # training's split: the whole string, cut after the prompt's tokens
    t = tokenizer(prompt + target)["input_ids"][len(p):]
    ids = torch.tensor([p + t])
    logits = model(input_ids=ids, attention_mask=torch.ones_like(ids), **kwargs).logits.float()
    logprobs = torch.log_softmax(logits[0, :-1], dim=-1)
    return float(sum(logprobs[len(p) - 1 + i, token] for i, token in enumerate(t)))


@pytest.mark.parametrize("with_reft", [False, True])
def test_batched_scores_equal_one_request_at_a_time(tiny_llama_dir, with_reft):
    """Right padding and mixed lengths in a batch do not change a score; a ReFT model is intervened
    on the prompt positions only, as in generation."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    if with_reft:
        torch.manual_seed(0)
        model = get_reft_model(model, ReftConfig("loreft", rank=2, layers=[0, 1], positions="f1+l1"))
        for param in model.interventions.parameters():
            param.data.normal_(0, 0.5)
    examples = _examples("commonsense/arc_easy") + _examples("commonsense/boolq", 2)
    ranked = rank_options(model, tokenizer, examples, batch_size=5, progress=False)
    for example, (answer, scores) in zip(examples, ranked):
        kwargs = {}
        if with_reft:
            kwargs["prompt_lengths"] = torch.tensor([len(tokenizer(example.prompt)["input_ids"])])
        direct = [_direct_score(model, tokenizer, example.prompt, option_target(example, o), **kwargs)
                  for o in options(example)]
        assert scores == pytest.approx(direct, abs=1e-4)
        assert answer == options(example)[max(range(len(direct)), key=direct.__getitem__)]


def test_an_untrained_row_scored_by_likelihood(tiny_llama_dir, tmp_path):
    args = ["train", COMMONSENSE, f"model.name={tiny_llama_dir}", "data.train=[commonsense/arc_easy]",
            "data.train_limit=4", "train.max_steps=1", "data.eval=[commonsense/arc_easy,commonsense/boolq]",
            "data.eval_limit=3", "eval.scoring=likelihood-text", "wandb.mode=disabled", f"output_root={tmp_path}",
            "name=none-likelihood"]
    assert main(args) == 0
    run = tmp_path / "none-likelihood/seed42"
    result = json.loads((run / "result.json").read_text())
    task = result["tasks"]["commonsense/arc_easy"]
    assert task["scoring"] == "likelihood-text" and task["n"] == 3
    rows = [json.loads(line) for line in (run / task["predictions"]).read_text().splitlines()]
    assert all(row["answer"] in ("answer1", "answer2", "answer3", "answer4") and len(row["output"]) == 4
               for row in rows)
    assert task["metrics"]["accuracy"] == pytest.approx(sum(row["correct"] for row in rows) / 3)


def test_option_text_scores_are_length_normalised_log_likelihoods(tiny_llama_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    examples = _examples("commonsense/social_i_qa", 2)
    ranked = rank_options(model, tokenizer, examples, batch_size=4, progress=False, scoring="likelihood-text")
    for example, (answer, scores) in zip(examples, ranked):
        texts = [option_text(example, o) for o in options(example)]
        context = question_context(example)
        direct = [_direct_score(model, tokenizer, context, " " + text) / len(text) for text in texts]
        assert scores == pytest.approx(direct, abs=1e-5)
        assert answer == options(example)[max(range(len(direct)), key=direct.__getitem__)]
    with pytest.raises(ValueError, match="unknown likelihood scoring 'nope'"):
        rank_options(model, tokenizer, examples, scoring="nope")
    reft = get_reft_model(model, ReftConfig("loreft", rank=2, layers=[0], positions="l1"))
    with pytest.warns(UserWarning, match="question-only context, not the prompt the interventions were trained on"):
        rank_options(reft, tokenizer, examples[:1], progress=False, scoring="likelihood-text")


def test_likelihood_scoring_refuses_a_prompt_without_options():
    example = get_task("arithmetic/gsm8k").load("test")[0]
    with pytest.raises(ValueError, match="no 'Answer format"):
        options(example)
