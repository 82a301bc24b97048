"""Offline judges measured against GPT-4's AlpacaEval decisions (real annotations from the data root)."""

import json
import warnings

import pytest

from benchmarks.cli import main
from benchmarks.experiments.config import EvalConfig
from benchmarks.experiments.judge_agreement import judge_pairs, load_pairs
from benchmarks.experiments.judges import LengthJudge, get_judge
from benchmarks.report.judge_agreement import agreement
from benchmarks.tasks.data import data_root

ANNOTATIONS = data_root() / "alpaca_eval" / "gpt4_annotations"
pytestmark = pytest.mark.skipif(not ANNOTATIONS.is_dir(), reason="needs ../shared/data/alpaca_eval")


def test_real_annotations_load_with_unusable_rows_left_out_and_named():
    with pytest.warns(UserWarning, match=r"6 phi-2 rows have no usable GPT-4 preference.*row 50"):
        pairs, skipped = load_pairs()
    assert len(pairs) == 3 * 805 - 6 and [r["reason"] for r in skipped["phi-2"]][:1] == ["preference None"]
    assert {pair.gpt4 for pair in pairs} == {0, 1, 2}  # "1.0" strings and ints read alike
    assert pairs[0].id == "alpaca-7b:0" and pairs[0].reference.startswith("Some famous actors")


def test_fractional_and_malformed_rows_are_left_out(tmp_path):
    folder = tmp_path / "alpaca_eval" / "gpt4_annotations"
    folder.mkdir(parents=True)
    row = {"instruction": "Say hi.", "output_1": "Hi.", "output_2": "Hello there!"}
    rows = [{**row, "preference": 2}, {**row, "preference": 1.5}, {**row, "preference": "x"},
            {"instruction": "Say hi.", "output_1": "Hi.", "preference": 1}]
    (folder / "m.json").write_text(json.dumps(rows))
    with pytest.warns(UserWarning, match="3 m rows"):
        pairs, skipped = load_pairs(["m"], root=tmp_path)
    assert [p.id for p in pairs] == ["m:0"]
    assert [r["reason"] for r in skipped["m"]] == ["preference 1.5", "preference 'x'", "missing output_2"]
    with pytest.raises(FileNotFoundError, match="GPT-4 annotations for 'absent'"):
        load_pairs(["absent"], root=tmp_path)


def _record(gpt4, preference):
    return {"judge": "x", "ids": [f"m:{i}" for i in range(len(gpt4))], "gpt4": gpt4, "preference": preference,
            "complete": True}


def test_agreement_of_a_perfect_and_a_constant_judge():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pairs, _ = load_pairs(["alpaca-7b"])
    gpt4 = [pair.gpt4 for pair in pairs]
    perfect = agreement(_record(gpt4, [{0: 0.5, 1: 0.0, 2: 1.0}[g] for g in gpt4]))
    assert perfect["accuracy"] == 100.0 and perfect["kappa"] == pytest.approx(1.0)
    assert perfect["win_rates"]["m"]["judge"] == pytest.approx(perfect["win_rates"]["m"]["gpt4"])
    constant = agreement(_record(gpt4, [0.0] * len(gpt4)))  # always the reference
    assert constant["kappa"] == 0.0 and constant["accuracy"] == pytest.approx(constant["reference_share"])
    assert constant["n"] == sum(g != 0 for g in gpt4) and constant["ties_left_out"] == gpt4.count(0)
    low, high = constant["accuracy_ci"]
    assert low < constant["accuracy"] < high and high - low < 8  # Wilson, n = 789


def test_killed_judging_continues_without_judging_a_pair_twice(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pairs, _ = load_pairs(["llama-2-7b-chat-hf"], per_model=60)
    path = tmp_path / "length.json"

    def killed_at_second_save(message):
        if "20/60" in message:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        judge_pairs("length", pairs, path, save_every=10, log=killed_at_second_save)
    partial = json.loads(path.read_text())
    assert partial["complete"] is False and partial["n"] == 20
    record = judge_pairs("length", pairs, path, save_every=10, log=lambda message: None)
    assert record["complete"] and record["n"] == 60 and record["judged"] == 60
    judge = LengthJudge()
    assert record["preference"] == [judge.preference(p.instruction, p.output, p.reference) for p in pairs]


def test_cli_writes_the_table_and_figure(tmp_path, capsys):
    assert main(["judge-agreement", "--judges", "length", "--models", "alpaca-7b", "--per-model", "100",
                 "--results", str(tmp_path)]) == 0
    text = (tmp_path / "tables" / "judge_agreement.md").read_text()
    assert "| always text-davinci-003 | 100 per model (seed 0) |" in text and "`length` (chosen)" in text
    assert (tmp_path / "plots" / "judge_agreement.png").stat().st_size > 0
    summary = json.loads((tmp_path / "judges" / "agreement.json").read_text())
    assert summary["chosen"] == "length" and summary["judges"]["length"]["n"] <= 100
    assert main(["judge-agreement", "--judges", "nonsense", "--results", str(tmp_path)]) == 2
    assert "unknown judge 'nonsense'" in capsys.readouterr().err


def test_config_refuses_an_unknown_judge():
    with pytest.raises(ValueError, match="eval.judge must be one of"):
        EvalConfig(judge="gpt5")


def test_local_lm_preference_is_order_symmetric():
    judge = get_judge("local_lm_rubric")
    a, b = "Paris is the capital of France.", "I like turtles."
    forward = judge.preference("What is the capital of France?", a, b)
    backward = judge.preference("What is the capital of France?", b, a)
    assert 0.0 <= forward <= 1.0 and forward + backward == pytest.approx(1.0, abs=1e-6)
