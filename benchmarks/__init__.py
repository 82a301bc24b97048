"""The paper's benchmarks, from a dataset to a table. Layers, each importing only those above it
in this list (and ``reft``, ``baselines``, ``slurm``):

* ``typed_yaml``: strict YAML, typed dataclasses, ``key=value`` overrides (every config);
* ``tasks/``: the protocol per task: task YAMLs, data readers, templates, extractors, metrics;
* ``experiments/``: one experiment (YAML + typed config), running it, scoring, judges, run identity;
* ``report/``: tables and plots from ``results/raw``;
* ``sweeps/``: sweep specs, launching, dev-only selection, reuse of dev runs, collection, pipelines;
* ``perf/``: speed benchmark scripts (``results/perf``); ``lm_eval_adapter``: the lm-eval model class;
* ``cli``: the ``reft`` command, on top of everything (nothing imports it).
"""
