"""``reft``: the harness's command line.

    reft train CONFIG.yaml [key=value ...]    train + evaluate one experiment, write its run directory
    reft eval RUN_DIR [key=value ...]         re-score a finished run's saved model (other tasks,
                                              another decoding or extractor) into RUN_DIR/evals/<label>/
    reft tasks                                list the registered tasks with versions
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path


def _print_result(tasks: dict) -> None:
    for name, task in tasks.items():
        metric = task["primary_metric"]
        print(f"  {name:<32} {metric} = {task['metrics'].get(metric, float('nan')):.4f}  (n={task['n']})")


def command_train(args) -> int:
    from .config import load_experiment
    from .run import run_experiment

    config = load_experiment(args.config, args.overrides)
    directory = run_experiment(config)
    result = json.loads((directory / "result.json").read_text())
    print(f"run directory: {directory}")
    print(f"trainable parameters: {result['params']['trainable']:,d} ({result['params']['percent']:.4f}%)")
    _print_result(result["tasks"])
    return 0


def command_eval(args) -> int:
    from .config import apply_overrides, parse_experiment
    from .run import evaluate_run

    run = Path(args.run_dir)
    if not (run / "config.json").is_file():
        raise SystemExit(f"{run} is not a run directory (no config.json)")
    values = apply_overrides(json.loads((run / "config.json").read_text()), args.overrides)
    config = parse_experiment(values, str(run / "config.json"))
    label = args.label or hashlib.sha256(" ".join(sorted(args.overrides)).encode()).hexdigest()[:8]
    tasks = evaluate_run(config, run, run / "evals" / label)
    print(f"results: {run / 'evals' / label}")
    _print_result(tasks)
    return 0


def command_tasks(args) -> int:
    from .tasks import TASKS

    for key, task in sorted(TASKS.items()):
        print(f"{key:<32} v{task.version}  {task.kind:<9} splits: {', '.join(sorted(task.splits))}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="reft", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train and evaluate one experiment")
    train.add_argument("config")
    train.add_argument("overrides", nargs="*", help="key=value, e.g. train.lr=3e-4 seed=43")
    train.set_defaults(run=command_train)
    evaluate = commands.add_parser("eval", help="re-score a finished run")
    evaluate.add_argument("run_dir")
    evaluate.add_argument("overrides", nargs="*", help="e.g. 'data.eval=[arithmetic/aqua]' eval.decoding=paper")
    evaluate.add_argument("--label", help="name of the results folder (default: a hash of the overrides)")
    evaluate.set_defaults(run=command_eval)
    tasks = commands.add_parser("tasks", help="list registered tasks")
    tasks.set_defaults(run=command_tasks)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"reft {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
