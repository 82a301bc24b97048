"""The contamination guard: before a run trains, its training prompts are compared with the prompts
of every set it will score; a scored set that overlaps refuses the run unless the config says
``data.allow_contamination: true``. The counts go into ``result.json`` (``contamination``).

Prompts are compared by their **core**: the text normalised (lower case, every run of characters
other than letters and digits made one space), with the words every prompt of the same set starts
or ends with removed (the template: ``Below is an instruction ... ### Response:``), so a train set
and a test set written with different templates still meet on the question itself. An example
overlaps

* **exactly** when its core equals a training core, and
* **by n-grams** when at least half of its word 8-grams occur in the training cores (rephrased
  copies, a question with a changed number); cores shorter than 8 words count only exactly.

This is what catches ``llm-adapters/math_data.json``: its questions are the arithmetic test sets'
questions (1,055 of GSM8K's 1,319), and 6 of ``math_1k``'s questions are MAWPS test questions.
"""

from __future__ import annotations

import re
from typing import Iterable, Sequence

NGRAM = 8
NGRAM_SHARE = 0.5
SHOWN = 5

_NON_WORD = re.compile(r"[^0-9a-z]+")


def normalise(text: str) -> list[str]:
    return _NON_WORD.sub(" ", str(text).lower()).split()


def _common_prefix(rows: Sequence[list[str]]) -> int:
    first, length = rows[0], min(len(r) for r in rows)
    for i in range(length):
        if any(r[i] != first[i] for r in rows):
            return i
    return length


def cores(prompts: Sequence[str]) -> list[tuple[str, ...]]:
    """Each prompt's normalised words without the words all prompts of the set share at their start
    and end (a one-prompt set keeps its words)."""
    rows = [normalise(p) for p in prompts]
    if len(rows) < 2:
        return [tuple(r) for r in rows]
    start = _common_prefix(rows)
    end = _common_prefix([r[start:][::-1] for r in rows])
    return [tuple(r[start:len(r) - end]) for r in rows]


def _ngrams(words: tuple[str, ...]) -> set[tuple[str, ...]]:
    return {words[i:i + NGRAM] for i in range(len(words) - NGRAM + 1)}


class TrainingText:
    """The cores and 8-grams of a run's training prompts, to test scored sets against."""

    def __init__(self, prompts: Sequence[str]) -> None:
        self.cores = set(cores(prompts))
        self.ngrams = set().union(*map(_ngrams, self.cores)) if self.cores else set()

    def overlap(self, ids: Sequence[str], prompts: Sequence[str], every: bool = False) -> dict:
        """``{n, exact, ngram, examples}`` for one scored set: how many of its examples match a
        training prompt exactly, how many by 8-grams (exact ones included), and up to 5 ids (all
        with ``every``)."""
        exact, ngram = [], []
        for example_id, core in zip(ids, cores(prompts)):
            if core and core in self.cores:
                exact.append(example_id)
                ngram.append(example_id)
                continue
            grams = _ngrams(core)
            if grams and len(grams & self.ngrams) >= NGRAM_SHARE * len(grams):
                ngram.append(example_id)
        return {"n": len(ids), "exact": len(exact), "ngram": len(ngram), "examples": ngram if every else ngram[:SHOWN]}


    def flagged(self, ids: Sequence[str], prompts: Sequence[str]) -> list[tuple[str, ...]]:
        """The cores (within their own set) of the examples :meth:`overlap` finds."""
        found = set(self.overlap(ids, prompts, every=True)["examples"])
        return [core for example_id, core in zip(ids, cores(prompts)) if example_id in found]


def sharing(prompts: Sequence[str], flagged: Sequence[tuple[str, ...]]) -> list[bool]:
    """Per prompt (its core within ``prompts``): does it equal a ``flagged`` core or share a word
    8-gram with one?"""
    exact = set(flagged)
    grams = set().union(*map(_ngrams, flagged)) if flagged else set()
    return [bool(core) and (core in exact or bool(_ngrams(core) & grams)) for core in cores(prompts)]


def contamination_report(train_prompts: Sequence[str], scored: Iterable[tuple[str, Sequence[str], Sequence[str]]]
                         ) -> dict[str, dict]:
    """For each scored set ``(label, ids, prompts)``, its overlap with the training prompts."""
    training = TrainingText(train_prompts)
    return {label: training.overlap(ids, prompts) for label, ids, prompts in scored}


def overlapping(report: dict[str, dict]) -> dict[str, dict]:
    """The scored sets of a report that share at least one example with the training prompts."""
    return {label: counts for label, counts in report.items() if counts["ngram"]}
