"""Loaders: real files (row counts of the data README), fixtures for the sets not available
offline, golden prompts and targets, clear errors for malformed rows and missing files, and the
GLUE dev/test re-split."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from benchmarks.tasks import data
from benchmarks.tasks.data import glue_dev_test_split, read_file
from benchmarks.tasks import get_task

FIXTURES = Path(__file__).parent / "fixtures" / "data"
REAL = data.data_root()
needs_real_data = pytest.mark.skipif(not REAL.is_dir(), reason=f"real benchmark data not found at {REAL}")

# Row counts from the data README (../shared/data/README.md).
REAL_COUNTS = {
    ("commonsense/boolq", "test"): 3270, ("commonsense/piqa", "test"): 1838,
    ("commonsense/social_i_qa", "test"): 1954, ("commonsense/winogrande", "test"): 1267,
    ("commonsense/arc_easy", "test"): 2376, ("commonsense/arc_challenge", "test"): 1172,
    ("commonsense/openbookqa", "test"): 500,
    ("commonsense/boolq", "train"): 9427, ("commonsense/arc_easy", "train"): 2251,
    ("commonsense/arc_challenge", "train"): 1119, ("commonsense/openbookqa", "train"): 4957,
    ("arithmetic/aqua", "test"): 254, ("arithmetic/gsm8k", "test"): 1319,
    ("arithmetic/mawps", "test"): 238, ("arithmetic/svamp", "test"): 1000,
    ("arithmetic/mawps_train", "train"): 1898, ("arithmetic/mawps_train", "validation"): 237,
    ("dev/gsm8k", "train"): 7473, ("dev/gsm8k", "test"): 1319,
    ("dev/gsm8k", "dev"): 300, ("dev/gsm8k", "train_minus_dev"): 7173,
    ("instruction/ultrafeedback_1k", "train"): 1000, ("instruction/alpaca_eval", "eval"): 805,
    ("glue/sst2", "validation"): 872, ("glue/sst2", "train"): 60614,
    ("glue/mrpc", "validation"): 408, ("glue/mrpc", "train"): 3668,
    ("glue/rte", "validation"): 277, ("glue/rte", "train"): 2490,
    ("glue/stsb", "validation"): 1500, ("glue/qnli", "validation"): 5463,
}

ALPACA_NO_INPUT = ("Below is an instruction that describes a task. Write a response that appropriately "
                   "completes the request.\n\n### Instruction:\n{}\n\n### Response:\n")


@needs_real_data
@pytest.mark.parametrize("key, split", sorted(REAL_COUNTS))
def test_real_row_counts(key, split):
    assert len(get_task(key).load(split)) == REAL_COUNTS[key, split]


@needs_real_data
def test_commonsense_prompt_target_gold():
    example = get_task("commonsense/boolq").load("test", limit=1)[0]
    assert example.prompt == ("Please answer the following question with true or false, question: does ethanol "
                              "take more energy make that produces?\n\nAnswer format: true/false\n")
    assert (example.target, example.gold, example.id) == ("the correct answer is false", "false",
                                                          "commonsense/boolq:test:0")
    assert example.raw["output"] == example.target


@needs_real_data
def test_arithmetic_prompt_is_alpaca_without_input():
    example = get_task("arithmetic/svamp").load(limit=1)[0]
    assert example.prompt == ALPACA_NO_INPUT.format(example.raw["instruction"])
    assert example.target == example.raw["output"] and example.gold == "8.0"


@needs_real_data
def test_mawps_train_target():
    example = get_task("arithmetic/mawps_train").load("train", limit=1)[0]
    assert example.prompt == ALPACA_NO_INPUT.format("A waiter had 22 customers in his section . If 14 of them left "
                                                    "and the rest of his tables had 4 people at each table , how many "
                                                    "tables did he have ?")
    assert (example.target, example.gold) == ("The answer is 2.", 2.0)


@needs_real_data
def test_gsm8k_dev_is_last_300_train_rows_with_the_head_prompt():
    task = get_task("dev/gsm8k")
    train, dev, rest = task.load("train"), task.load("dev"), task.load("train_minus_dev")
    assert [e.raw for e in rest + dev] == [e.raw for e in train]
    assert [e.id for e in dev] == [f"dev/gsm8k:dev:{i}" for i in range(7173, 7473)]
    first = train[0]
    assert first.prompt == (first.raw["question"] + "\nAnswer the above question. First think step by step and "
                            "then answer the final number.\n")
    assert first.target.endswith("\nThe final answer is:  72") and first.gold == 72.0
    finals = {e.raw["answer"].split("####")[-1].strip(): e.gold for e in train}
    assert finals["1,080"] == 1080.0  # commas removed, as for generations


@needs_real_data
def test_alpaca_eval_keeps_reference_and_subset():
    example = get_task("instruction/alpaca_eval").load(limit=1)[0]
    assert example.prompt == ALPACA_NO_INPUT.format("What are the names of some famous actors that started their "
                                                    "careers on Broadway?")
    assert example.raw["dataset"] == "helpful_base" and example.gold == example.raw["output"]


@needs_real_data
def test_glue_labels_in_hf_order():
    rte = get_task("glue/rte").load(limit=2)  # offline RTE stores indices: 0 = entailment
    assert [e.label for e in rte] == [1, 0] and rte[0].text_b == "Christopher Reeve had an accident."
    qnli = get_task("glue/qnli").load(limit=2)  # QNLI stores names
    assert [e.label for e in qnli] == [0, 1]
    mrpc = get_task("glue/mrpc").load(limit=1)[0]  # the file starts with a BOM and has a lone quote
    assert mrpc.label == 1 and mrpc.text_b.startswith('"The foodservice pie business')
    stsb = get_task("glue/stsb").load(limit=1)[0]
    assert (stsb.label, stsb.text_a) == (5.0, "A man with a hard hat is dancing.")
    sst2 = get_task("glue/sst2").load(limit=1)[0]
    assert (sst2.text_b, sst2.label, sst2.prompt) == (None, 1, sst2.text_a)


def test_fixture_commonsense_and_math_training_sets():
    commonsense = get_task("commonsense/commonsense_170k").load(data_root=FIXTURES)
    assert len(commonsense) == 7 and {e.target for e in commonsense} >= {"the correct answer is ending1"}
    math = get_task("arithmetic/math_10k").load(data_root=FIXTURES)
    assert [e.gold for e in math] == ["4.0", "1.0", "C"]
    hellaswag = get_task("commonsense/hellaswag").load(data_root=FIXTURES)
    assert [e.gold for e in hellaswag] == ["ending4", "ending1"]


def test_fixture_ultrafeedback_input_and_no_input():
    rows = get_task("instruction/ultrafeedback").load(data_root=FIXTURES)
    assert rows[0].prompt == ALPACA_NO_INPUT.format("Write a haiku about autumn leaves.")  # no "input" key
    assert rows[1].prompt == (
        "Below is an instruction that describes a task, paired with an input that provides further context. "
        "Write a response that appropriately completes the request.\n\n### Instruction:\nTranslate the sentence "
        "into French.\n\n### Input:\nThe cat is sleeping on the sofa.\n\n### Response:\n")
    assert rows[2].prompt.startswith("Below is an instruction that describes a task. Write")  # empty "input"
    assert rows[1].target == "Le chat dort sur le canapé."


def test_every_declared_local_copy_is_the_one_declared(tmp_path):
    """benchmarks/tasks/sources.yaml: every file it lists is here with its rows and sha256; a copy
    with a row more, or the same rows edited, is refused by name."""
    import shutil

    from benchmarks.tasks.data import SourceMismatch, data_root, declared_sources, file_digest, read_file

    for path, declared in declared_sources().items():
        local = data_root() / path
        assert local.is_file(), path
        assert file_digest(local) == declared["sha256"], path
    task = get_task("glue/rte")
    copy = tmp_path / "glue" / "RTE"
    copy.mkdir(parents=True)
    lines = (data_root() / "glue/RTE/dev.tsv").read_text().splitlines(keepends=True)
    (copy / "dev.tsv").write_text("".join(lines + lines[-1:]))
    with pytest.raises(SourceMismatch, match=r"holds 278 rows, but glue/RTE/dev.tsv is declared with 277"):
        task.load(data_root=tmp_path)
    (copy / "dev.tsv").write_text("".join(lines[:-1] + ["X" + lines[-1]]))  # one sentence edited
    with pytest.raises(SourceMismatch, match="sha256 .* differs from the declared .* another version of glue/RTE/dev.tsv"):
        task.load(data_root=tmp_path)
    assert len(read_file(copy / "dev.tsv")) == 277


def test_fixture_glue_tsv_formats(monkeypatch):
    from benchmarks.tasks.data import SourceMismatch

    with pytest.raises(SourceMismatch, match=r"glue/CoLA/dev.tsv: holds 4 rows, but glue/CoLA/dev.tsv is declared "
                                             r"with 1,043"):  # a 4-row excerpt is not GLUE's CoLA dev set
        get_task("glue/cola").load(data_root=FIXTURES)
    monkeypatch.setenv("REFT_UNVERIFIED_DATA", "1")  # these excerpts are deliberate
    cola = get_task("glue/cola").load(data_root=FIXTURES)  # headerless
    assert [e.label for e in cola] == [1, 1, 1, 0] and cola[3].text_a == "As you eat the most, you want the least."
    assert cola[0].text_b is None and len(get_task("glue/cola").load("train", data_root=FIXTURES)) == 3
    mnli = get_task("glue/mnli").load(data_root=FIXTURES)
    assert [e.label for e in mnli] == [1, 2, 0] and mnli[0].text_a == "The new rights are nice enough"
    assert [e.label for e in get_task("glue/mnli").load("train", data_root=FIXTURES)] == [1, 0, 2]
    qqp = get_task("glue/qqp").load(data_root=FIXTURES)
    assert [e.label for e in qqp] == [0, 0, 1] and qqp[2].text_b == "What are some reasons to travel alone?"


def test_limit_and_unknown_split():
    task = get_task("commonsense/hellaswag")
    assert len(task.load(data_root=FIXTURES, limit=1)) == 1
    with pytest.raises(ValueError, match="has no split 'validation'; it has \\['dev', 'test', 'train', "
                                         "'train_minus_dev'\\]"):
        task.load("validation", data_root=FIXTURES)


def test_hellaswag_train_rows_are_offline_in_the_commonsense_format():
    task = get_task("commonsense/hellaswag")
    train, dev = task.load("train_minus_dev"), task.load("dev")
    assert (len(train), len(dev)) == (3800, 200) and train[0].target == "the correct answer is ending4"
    assert {e.gold for e in train} == {"ending1", "ending2", "ending3", "ending4"}


def test_data_root_env(monkeypatch, tmp_path):
    monkeypatch.setenv("REFT_DATA_ROOT", str(tmp_path))
    assert data.data_root() == tmp_path
    monkeypatch.delenv("REFT_DATA_ROOT")
    assert data.data_root() == Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.mark.skipif(importlib.util.find_spec("datasets") is not None, reason="`datasets` installed: would download")
def test_missing_file_names_path_and_hub(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        get_task("glue/qqp").load(data_root=tmp_path)
    message = str(error.value)
    assert str(tmp_path / "glue/QQP/dev.tsv") in message and "nyu-mll/glue" in message and "REFT_DATA_ROOT" in message


def write_json(root: Path, rows) -> Path:
    path = root / "llm-adapters/dataset/hellaswag/test.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(rows))
    return path


def test_missing_field_names_file_row_and_field(tmp_path):
    path = write_json(tmp_path, [{"instruction": "q", "answer": "ending1"}, {"instruction": "q"}])
    with pytest.raises(ValueError, match=f"{path}, row 1: missing field 'answer'"):
        get_task("commonsense/hellaswag").load(data_root=tmp_path)


def test_bad_field_type(tmp_path):
    path = write_json(tmp_path, [{"instruction": ["not", "text"], "answer": "ending1"}])
    with pytest.raises(ValueError, match=f"{path}, row 0: field 'instruction' must be a string"):
        get_task("commonsense/hellaswag").load(data_root=tmp_path)


def test_gsm8k_row_without_final_answer(tmp_path, monkeypatch):
    monkeypatch.setenv("REFT_UNVERIFIED_DATA", "1")  # a 2-row file at GSM8K's path: past the declaration check
    path = tmp_path / "gsm8k/test.jsonl"
    path.parent.mkdir()
    path.write_text('{"question": "q", "answer": "#### 3"}\n\n{"question": "q", "answer": "no final line"}\n')
    with pytest.raises(ValueError, match=f"{path}, row 1: field 'answer' has no '#### <number>' line"):
        get_task("dev/gsm8k").load("test", data_root=tmp_path)


def test_invalid_jsonl_line(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\n{"a": \n')
    with pytest.raises(ValueError, match=f"{path}, row 1 \\(line 2\\): invalid JSON"):
        read_file(path)


def test_tsv_field_count_and_bad_label(tmp_path, monkeypatch):
    monkeypatch.setenv("REFT_UNVERIFIED_DATA", "1")  # a 2-row file at RTE's path: past the declaration check
    path = tmp_path / "glue/RTE/dev.tsv"
    path.parent.mkdir(parents=True)
    path.write_text("sentence1\tsentence2\tlabel\tidx\na\tb\t0\t0\na\tb\t1\n")
    with pytest.raises(ValueError, match=f"{path}, row 1: expected 4 tab-separated fields, got 3"):
        get_task("glue/rte").load(data_root=tmp_path)
    path.write_text("sentence1\tsentence2\tlabel\tidx\na\tb\tneutral\t0\n")
    with pytest.raises(ValueError, match="row 0: label 'neutral' is neither one of"):
        get_task("glue/rte").load(data_root=tmp_path)


def test_glue_split_reproduces_random_split():
    import torch

    for n, seed in [(277, 42), (277, 43), (5463, 44)]:
        torch.manual_seed(seed)
        test, dev = torch.utils.data.random_split(range(n), [n - (1000 if n > 5000 else n // 2),
                                                            1000 if n > 5000 else n // 2])
        assert glue_dev_test_split(n, seed) == (list(test.indices), list(dev.indices))


@pytest.mark.parametrize("n, dev_size", [(277, 138), (408, 204), (872, 436), (1043, 521), (1500, 750),
                                         (5463, 1000), (9815, 1000), (40430, 1000)])
def test_glue_split_sizes_match_the_paper(n, dev_size):
    test, dev = glue_dev_test_split(n, seed=42)
    assert (len(test), len(dev)) == (n - dev_size, dev_size)
    assert sorted(test + dev) == list(range(n))


def test_fixed_glue_split_ignores_the_seed():
    assert glue_dev_test_split(277, 43, fixed=True) == glue_dev_test_split(277, 46, fixed=True) \
        == glue_dev_test_split(277, 42)
    assert glue_dev_test_split(277, 43) != glue_dev_test_split(277, 42)
