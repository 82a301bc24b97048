"""One experiment: its YAML (``<suite>/*.yaml``) and typed config (``config``), running it end to end
(``run``: train, score, write the run directory), scoring a task (``evaluate``), judges for
instruction following (``judges``), run identity (``identity``) and directory locks (``locks``)."""
