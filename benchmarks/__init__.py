"""Benchmarks of the ReFT paper: declarative tasks (``tasks``), data loaders, templates, answer
extractors and metrics; ``speed.py`` is the speed benchmark script."""
