"""Speed benchmark scripts (not tests): ``speed`` (training step time and memory per method) and
``eval_speed`` (evaluation against the authors' loop). Numbers go to ``results/perf``."""
