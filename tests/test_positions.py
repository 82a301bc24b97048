"""Position computation: pyreft's golden cases, the paper's short-prompt rule, padding on real prompts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reft.positions import PositionSpec, intervention_locations, padding_offsets

#: pyreft 0.1.0's positions for 400 cases (a copy of ../shared/reference/pyreft_positions.json kept
#: in the repository, so the golden test runs on every machine and fails, never skips, without it)
GOLDEN = Path(__file__).resolve().parent / "fixtures" / "pyreft_positions.json"


def golden_cases():
    assert GOLDEN.is_file(), f"{GOLDEN} is missing: the pyreft golden cases cannot be checked"
    return json.loads(GOLDEN.read_text())["cases"]


def strip(row: list[int]) -> list[int]:
    """Positions without the -1 padding slots (pyreft pads n = 1 untied rows to width p + s)."""
    return [p for p in row if p >= 0]


def test_pyreft_rule_matches_all_golden_cases():
    cases = golden_cases()
    assert len(cases) == 400
    for case in cases:
        spec = PositionSpec.parse(case["positions"])
        tied = case["share_weights"]
        groups = spec.example_positions(case["prompt_len"], tied, rule="pyreft")
        # pyreft lists one row per intervention: each group's row repeated for every layer
        expected = [groups[i // case["num_layers"]] for i in range(len(groups) * case["num_layers"])]
        assert case["num_interventions"] == len(expected)
        assert [strip(row) for row in expected] == [strip(row) for row in case["locations"]], case


@pytest.mark.parametrize("spec,n,expected", [
    ("f7+l7", 20, [list(range(7)) + list(range(13, 20))]),
    ("f7+l7", 9, [[0, 1, 2, 3, 4, 5, 6, 7, 8] + [-1] * 5]),   # paper: p=4, s=5, no skipped middle
    ("f3", 4, [[0, 1, 2]]),                                     # n >= p+s: untouched
    ("f3", 2, [[0, -1, -1]]),                                   # n < p: p <- floor(n/2)
    ("l1", 1, [[0]]),
    ("f1+l1", 1, [[0, -1]]),                                    # p = floor(1/2) = 0, s = ceil(1/2) = 1
])
def test_paper_rule_tied(spec, n, expected):
    assert PositionSpec.parse(spec).example_positions(n, tied=True, rule="paper") == expected


def test_paper_rule_untied_and_pyreft_difference():
    spec = PositionSpec.parse("f7+l7")
    assert spec.example_positions(9, tied=False) == [[0, 1, 2, 3, -1, -1, -1], [4, 5, 6, 7, 8, -1, -1]]
    assert spec.example_positions(9, tied=False, rule="pyreft") == [[0, 1, 2, 3, -1, -1, -1], [5, 6, 7, 8, -1, -1, -1]]


@pytest.mark.parametrize("bad", ["", "x3", "f", "f0", "l0+f0", "7"])
def test_bad_specs_are_rejected(bad):
    with pytest.raises(ValueError, match="position spec"):
        PositionSpec.parse(bad)


def test_spec_round_trip_and_groups():
    for text in ("f7+l7", "f3", "l1"):
        assert str(PositionSpec.parse(text)) == text
    assert PositionSpec.parse("f7+l7").num_groups(tied=False) == 2
    assert PositionSpec.parse("f7+l7").num_groups(tied=True) == 1
    assert PositionSpec.parse("f3").num_groups(tied=False) == 1


PROMPTS = ["Please answer the following question with true or false, question: is the sky blue?\n",
           "Hi\n", "Which is heavier, a kilo of feathers or a kilo of steel? Answer format: answer1/answer2\n"]


@pytest.mark.parametrize("tied", [True, False])
@pytest.mark.parametrize("side", ["left", "right"])
def test_left_and_right_padding_select_the_same_tokens(smollm2_tokenizer, side, tied):
    """The edited *tokens* are the same whatever the padding (SmolLM2 adds no BOS token)."""
    tok = smollm2_tokenizer
    single = [tok(p)["input_ids"] for p in PROMPTS]
    batch = tok(PROMPTS, padding=True, padding_side=side, return_tensors="pt")
    mask = batch["attention_mask"]
    locs = intervention_locations("f3+l3", mask.sum(-1), tied=tied, offsets=padding_offsets(mask))
    for row, ids in enumerate(single):
        alone = intervention_locations("f3+l3", [len(ids)], tied=tied)[0]
        for group in range(locs.shape[1]):
            got = [batch["input_ids"][row, p].item() for p in locs[row, group] if p >= 0]
            want = [ids[p] for p in alone[group] if p >= 0]
            assert got == want and len(want) > 0
    if side == "left":
        assert (padding_offsets(mask) > 0).any()
    else:
        assert (padding_offsets(mask) == 0).all()


def test_last_position_is_the_last_prompt_token(smollm2_tokenizer):
    """``l1`` edits token n-1 (pyreft's library datasets were off by one and edited n-2)."""
    ids = smollm2_tokenizer(PROMPTS[0])["input_ids"]
    loc = intervention_locations("l1", [len(ids)], tied=False)[0, 0, 0].item()
    assert loc == len(ids) - 1 and smollm2_tokenizer.decode([ids[loc]]) == "\n"
