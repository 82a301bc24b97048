"""Task registry: every YAML loads and is checked, fingerprints force version bumps, decoding
configs match the paper, and feeding each eval set's gold text through its extractor scores 100%."""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import pytest

from benchmarks.tasks import templates
from benchmarks.tasks.extract import EXTRACTORS
from benchmarks.tasks.registry import SUITES, TASK_DIR, TASKS, get_task, load_task, tasks_in_suite
from test_bench_extract_metrics import paper_extract_output

FIXTURES = Path(__file__).parent / "fixtures" / "data"
# The sets not available offline are checked on fixtures in the upstream format.
FIXTURE_TASKS = {"commonsense/commonsense_170k", "commonsense/hellaswag", "arithmetic/math_10k",
                 "instruction/ultrafeedback", "glue/mnli", "glue/qqp",  # CoLA: the real files are offline
                 "arithmetic/addsub", "arithmetic/multiarith", "arithmetic/singleeq"}
# LLM-Adapters' arithmetic test rows carry an LM-written chain of thought as `output` (sometimes
# wrong, empty for MAWPS), not a gold solution: their gold text is "The answer is <answer>." instead.
LM_WRITTEN_OUTPUT = {"arithmetic/aqua", "arithmetic/gsm8k", "arithmetic/mawps", "arithmetic/svamp",
                     "arithmetic/addsub", "arithmetic/multiarith", "arithmetic/singleeq"}
# train sets whose targets are LM-written solutions whose last number need not be the answer
LM_WRITTEN_TRAIN = {"arithmetic/math_1k", "arithmetic/math_data"}


@functools.lru_cache(maxsize=None)
def examples(key: str, split: str) -> tuple:
    """The split's rows: from the fixtures for a task written there, else (or for a split the
    fixtures lack, e.g. HellaSwag's train rows) from the real data root; () where neither has it."""
    for root in ([FIXTURES] if key in FIXTURE_TASKS else []) + [None]:
        try:
            return tuple(get_task(key).load(split, data_root=root))
        except FileNotFoundError:
            continue
    return ()


def loadable_splits(kind: str):
    return [(key, split) for key, task in sorted(TASKS.items()) if task.kind == kind for split in task.splits]


def test_registry():
    assert len(TASKS) == 33 and set(SUITES) == {task.suite for task in TASKS.values()}
    assert [t.name for t in tasks_in_suite("commonsense")] == [
        "arc_challenge", "arc_easy", "boolq", "commonsense_170k", "hellaswag", "openbookqa", "piqa",
        "social_i_qa", "winogrande"]
    assert get_task("dev/gsm8k").key == "dev/gsm8k" and get_task("dev/gsm8k").name == "gsm8k"
    with pytest.raises(ValueError, match="unknown task 'commonsense/bool_q'; known tasks: arithmetic/addsub, arithmetic/aqua, "):
        get_task("commonsense/bool_q")
    with pytest.raises(ValueError, match="unknown suite 'math'"):
        tasks_in_suite("math")


@pytest.mark.parametrize("key", sorted(TASKS))
def test_fingerprint_is_recorded(key):
    task = TASKS[key]
    new = task.fingerprint()
    assert task.recorded_fingerprint == new, f"task {key} changed: bump version and set fingerprint: {new}"


def test_fingerprint_follows_what_changes_scores(monkeypatch):
    boolq = get_task("commonsense/boolq")
    recorded = boolq.fingerprint()
    assert dataclasses.replace(boolq, trigger="the answer is ").fingerprint() != recorded
    monkeypatch.setattr(templates, "COMMONSENSE", "%s\n\n")  # an edited prompt text
    assert boolq.fingerprint() != recorded
    monkeypatch.undo()
    assert boolq.fingerprint() == recorded
    assert dataclasses.replace(boolq, version=2).fingerprint() == recorded
    assert boolq.variant(decoding="sampling").fingerprint() != recorded
    assert get_task("arithmetic/gsm8k").fingerprint() != get_task("arithmetic/svamp").fingerprint()


def test_decoding_configs():
    commonsense = get_task("commonsense/piqa")
    assert commonsense.decoding == {"max_new_tokens": 32, "do_sample": False, "num_beams": 1}
    arithmetic = get_task("arithmetic/svamp")
    assert arithmetic.decoding == arithmetic.decoding_for("greedy") == {
        "max_new_tokens": 512, "do_sample": False, "num_beams": 1}
    assert arithmetic.decoding_for("paper") == {"max_new_tokens": 512, "temperature": 0.3, "top_p": 0.75,
                                                "top_k": 40, "num_beams": 4, "do_sample": True,
                                                "early_stopping": True}
    assert get_task("dev/gsm8k").decoding == {"max_new_tokens": 256, "do_sample": False, "num_beams": 1}
    assert get_task("instruction/alpaca_eval").decoding == {
        "max_length": 2048, "no_repeat_ngram_size": 5, "repetition_penalty": 1.1, "do_sample": False,
        "num_beams": 1}
    assert get_task("glue/rte").decoding == {}
    with pytest.raises(ValueError, match="no decoding 'paper'; it has \\['greedy', 'sampling'\\]"):
        commonsense.decoding_for("paper")
    with pytest.raises(ValueError, match="no extractor 'regex'"):
        commonsense.variant(extractor="regex")


def test_classification_shapes():
    assert [get_task(k).num_labels for k in ("glue/stsb", "glue/mnli", "glue/cola")] == [1, 3, 2]
    assert get_task("commonsense/boolq").num_labels is None
    assert {t.kind for t in tasks_in_suite("glue")} == {"classify"}


def test_arithmetic_extractor_matches_the_paper_switch():
    """The paper picks the letter rule when the gold is not a float; each YAML fixes that choice."""
    for key in LM_WRITTEN_OUTPUT:
        golds = [e.gold for e in examples(key, "test")]
        if not golds:
            pytest.skip(f"{key}: real data not found")
        letters = get_task(key).extractors["paper"]["fn"] == "first_letter"
        assert all(gold in list("ABCDE") if letters else is_float(gold) for gold in golds), key


def is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("key, split", loadable_splits("generate"))
def test_gold_text_scores_perfectly(key, split):
    rows = examples(key, split)
    if not rows:
        pytest.skip(f"{key} {split}: data not available offline")
    task = get_task(key)
    if key in LM_WRITTEN_OUTPUT | LM_WRITTEN_TRAIN:
        texts = [f"The answer is {e.gold}." for e in rows]
    elif task.metric == "alpaca_eval":
        assert all(task.extract(e.target) == e.target.lstrip() for e in rows)
        return
    else:
        texts = [e.target for e in rows]
    answers = [task.extract(text) for text in texts]
    assert task.score(answers, [e.gold for e in rows])["accuracy"] >= 0.99
    if "llm_adapters" in task.extractors:
        lenient = task.variant(extractor="llm_adapters")
        assert lenient.score([lenient.extract(t) for t in texts], [e.gold for e in rows])["accuracy"] >= 0.99


@pytest.mark.parametrize("key, split", loadable_splits("generate"))
def test_new_token_extraction_equals_the_papers(key, split):
    """The paper cuts decode(prompt + generation) at the first trigger; the task sees only the
    generation. Identical when the trigger ends every prompt or appears in none, as checked here."""
    rows = examples(key, split)
    if not rows:
        pytest.skip(f"{key} {split}: data not available offline")
    task = get_task(key)
    params = dict(task.extractors[task.extractor])
    extractor, _ = EXTRACTORS[params.pop("fn")], params.pop("use_trigger")
    for example in rows:
        start = example.prompt.find(task.trigger)
        assert (start >= 0 and not example.prompt[start + len(task.trigger):].strip()) if task.trigger_in_prompt \
            else start < 0, example.id
        for generation in (example.target, "", f" so {task.trigger}12 {task.trigger} 3"):
            paper = extractor(paper_extract_output(example.prompt + generation, task.trigger), **params)
            assert task.extract(generation) == paper, (example.id, generation)


@pytest.mark.parametrize("key, split", loadable_splits("classify"))
def test_gold_labels_score_perfectly(key, split):
    rows = examples(key, split)
    if not rows:
        pytest.skip(f"{key} {split}: data not available offline")
    task = get_task(key)
    if task.num_labels == 1:
        answers = [task.extract([e.label]) for e in rows]
    else:
        answers = [task.extract([float(i == e.label) for i in range(task.num_labels)]) for e in rows]
    scores = task.score(answers, [e.gold for e in rows])
    assert scores[task.primary_metric] == pytest.approx(1.0)


@pytest.mark.parametrize("change, message", [
    ("metric: exact_match\n", "duplicate key\\(s\\) \\['metric'\\]"),
    ("promt: x\n", "unknown key\\(s\\) \\['promt'\\]"),
])
def test_yaml_errors_name_the_key_and_file(tmp_path, change, message):
    path = tmp_path / "commonsense" / "boolq.yaml"
    path.parent.mkdir()
    path.write_text((TASK_DIR / "commonsense" / "boolq.yaml").read_text() + change)
    with pytest.raises(ValueError, match=f"{path}: {message}"):
        load_task(path)


def test_yaml_missing_key_and_wrong_place(tmp_path):
    text = (TASK_DIR / "glue" / "rte.yaml").read_text()
    path = tmp_path / "glue" / "rte.yaml"
    path.parent.mkdir()
    path.write_text(text.replace("metric: accuracy\n", ""))
    with pytest.raises(ValueError, match=f"{path}: missing key\\(s\\) \\['metric'\\]"):
        load_task(path)
    moved = tmp_path / "glue" / "rte2.yaml"
    moved.write_text(text)
    with pytest.raises(ValueError, match="suite/name glue/rte must match the file's folder/name"):
        load_task(moved)
    path.write_text(text.replace("metric: accuracy", "metric: accuracy_score"))
    with pytest.raises(ValueError, match="unknown metric 'accuracy_score'; known: "):
        load_task(path)
    path.write_text(text.replace("paper: {fn: argmax}", "paper: {fn: argmax, pattern: x}"))
    with pytest.raises(ValueError, match="unexpected keyword argument 'pattern'"):
        load_task(path)


def test_gsm8k_train_in_the_papers_target_format():
    task = get_task("arithmetic/gsm8k_train")
    rows = task.load("train")
    if not rows:
        pytest.skip("GSM8K train not offline")
    assert len(rows) == 7173 and len(task.load("dev")) == 300
    assert rows[0].target == ("Natalia sold 48/2 = 24 clips in May.\nNatalia sold 48+24 = 72 clips altogether in April "
                              "and May.\nThe answer is 72.")
    assert all("<<" not in e.target and e.target.endswith(".") for e in rows)
    assert rows[0].prompt == get_task("arithmetic/gsm8k").load("test")[0].prompt.replace(
        get_task("arithmetic/gsm8k").load("test")[0].raw["instruction"], rows[0].raw["question"])


def test_a_source_edited_under_a_running_process_keeps_its_fingerprint(tmp_path, monkeypatch):
    """Fingerprints hash the code in memory as first read: a long-lived worker whose source files
    are edited meanwhile (lines inserted above a function) keeps computing the same digest, instead
    of reading the new file at the old line numbers and refusing its runs."""
    import importlib
    import linecache

    from benchmarks.tasks.registry import _bare_source

    module = tmp_path / "edited_module.py"
    module.write_text("def score(x):\n    return x + 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    function = importlib.import_module("edited_module").score
    before = _bare_source(function)
    module.write_text("import os\n\n\ndef other():\n    return 2\n\n\ndef score(x):\n    return x + 1\n")
    linecache.checkcache(str(module))
    assert _bare_source(function) == before == "def score(x):\n    return x + 1"
