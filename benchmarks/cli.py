"""``reft``: the harness's command line.

    reft train CONFIG.yaml [key=value ...]    train + evaluate one experiment, write its run directory
    reft eval RUN_DIR [key=value ...]         re-score a finished run's saved model (other tasks,
                                              another decoding or extractor) into RUN_DIR/evals/<label>/
    reft sweep SPEC.yaml [--stage dev|final|all] [--executor local|slurm|debug] [key=value ...]
                                              launch a sweep's runs (skipping complete ones); `all`
                                              runs dev, selects on dev scores, then final
    reft sweep status SPEC.yaml               done / running / failed / pending per run
    reft select SPEC.yaml                     pick each method's setting from its dev runs only
    reft reproduce SUITE [--preset cpu|paper] [--quick]  a suite end to end (`make reproduce-SUITE`)
    reft collect RUN_DIR|SWEEP_ROOT ...       copy finished results into results/raw
                                              (a re-scoring, RUN_DIR/evals/LABEL: into results/rescored)
    reft tables [--results DIR]               regenerate results/tables and results/plots from results/raw
    reft [--tasks-dir DIR] COMMAND ...        also the tasks in DIR/<suite>/<task>.yaml (your own; $REFT_TASKS_PATH)
    reft tasks                                list the registered tasks with versions
    reft cluster up|down|status|env           the local single-node SLURM cluster (slurm/cluster_service.py)
    reft wandb-sync [ROOTS] [--dry-run]       sync the offline W&B runs kept in run directories
    reft tasks --export-lm-eval DIR [--tasks KEYS] [--split S] [--limit N]
                                              the generation tasks as lm-eval task YAMLs + rows
    reft lm-eval [lm-eval's arguments]        lm-eval's own CLI with the `reft` model registered (the
                                              default): --model_args pretrained=BASE,checkpoint=DIR
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import sys
from pathlib import Path


def _print_result(tasks: dict) -> None:
    for name, task in tasks.items():
        metric = task["primary_metric"]
        print(f"  {name:<32} {metric} = {task['metrics'].get(metric, float('nan')):.4f}  (n={task['n']})")


def command_train(args) -> int:
    from benchmarks.experiments.config import load_experiment
    from benchmarks.experiments.run import run_experiment

    from reft import distributed

    config = load_experiment(args.config, args.overrides)
    directory = run_experiment(config, overwrite=args.overwrite)
    if not distributed.is_main():  # other processes only helped train
        return 0
    result = json.loads((directory / "result.json").read_text())
    print(f"run directory: {directory}")
    print(f"trainable parameters: {result['params']['trainable']:,d} ({result['params']['percent']:.4f}%)")
    _print_result(result["tasks"])
    return 0


def command_eval(args) -> int:
    from benchmarks.experiments.config import parse_experiment
    from benchmarks.typed_yaml import apply_overrides
    from benchmarks.experiments.rescore import evaluate_run

    run = Path(args.run_dir)
    if not (run / "config.json").is_file():
        raise SystemExit(f"{run} is not a run directory (no config.json)")
    values = apply_overrides(json.loads((run / "config.json").read_text()), args.overrides)
    config = parse_experiment(values, str(run / "config.json"))
    label = args.label or hashlib.sha256(" ".join(sorted(args.overrides)).encode()).hexdigest()[:8]
    tasks = evaluate_run(config, run, run / "evals" / label, allow_changed_task=args.allow_changed_task)
    print(f"results: {run / 'evals' / label}")
    _print_result(tasks)
    return 0


def command_sweep(args) -> int:
    from benchmarks.sweeps.launch import status
    from benchmarks.sweeps.select import read_selection
    from benchmarks.sweeps.spec import expand, floor_runs, has_search, load_sweep, restrict_methods

    if args.spec == "status":  # `reft sweep status SPEC`
        if not args.overrides:
            raise ValueError("usage: reft sweep status SPEC.yaml")
        spec = restrict_methods(load_sweep(args.overrides[0], args.overrides[1:]), args.methods)
        # one point per method: the dev stage does not run (shown only where one was launched by hand)
        searched = has_search(spec) or spec.tuning is not None or (spec.root / "dev").is_dir()
        stages = ["dev", "final"] if searched else ["final"]
        runs = expand(spec, "dev") if spec.tuning is None and searched else []
        if spec.tuning is not None:
            from benchmarks.sweeps.search_record import trials_report

            print(trials_report(spec))
        try:
            chosen = read_selection(spec)
        except FileNotFoundError:
            chosen, stages = ({}, ["dev"]) if searched else ({method: {} for method in spec.methods}, ["final"])
        unselected = [method for method in spec.methods if method not in chosen]
        selected = [method for method in spec.methods if method in chosen]
        if selected:  # the final stage of the methods chosen so far (a sweep run part by part: --methods)
            runs += expand(restrict_methods(copy.deepcopy(spec), selected), "final", chosen) + floor_runs(spec)
        rows = status(spec, runs)
        counts = {state: sum(r.state == state for r in rows)
                  for state in ("done", "running", "failed", "pending", "stale")}
        print(f"sweep {spec.name} ({', '.join(stages)}): " + ", ".join(f"{v} {k}" for k, v in counts.items()))
        if selected and unselected:
            print(f"  final stage not selected yet for: {', '.join(unselected)}")
        for row in rows:
            print(f"  {row.state:<8} {row.key}  {row.job_id or ''}")
            if row.state in ("failed", "stale") and row.log_tail:
                print("    " + row.log_tail.replace("\n", "\n    "))
        return 1 if counts["failed"] or counts["stale"] else 0
    from benchmarks.sweeps.pipeline import run_stages

    overrides = list(args.overrides) + ([f"executor.kind={args.executor}"] if args.executor else [])
    run_stages(restrict_methods(load_sweep(args.spec, overrides), args.methods), args.stage, wait=not args.no_wait,
               overwrite_stale=args.overwrite_stale)
    return 0


def command_select(args) -> int:
    from benchmarks.sweeps.select import select
    from benchmarks.sweeps.spec import load_sweep, restrict_methods

    spec = restrict_methods(load_sweep(args.spec, args.overrides), args.methods)
    if spec.tuning is not None:
        from benchmarks.sweeps.search_record import select_from_search

        record = select_from_search(spec)
    else:
        record = select(spec)
    for method, point in record["chosen"].items():
        print(f"  {method}: {point}")
    return 0


def command_reproduce(args) -> int:
    from benchmarks.sweeps.pipeline import reproduce

    reproduce(args.suite, args.preset, args.overrides, quick=args.quick)
    return 0


def command_collect(args) -> int:
    from benchmarks.sweeps.collect import RAW, RESCORED, collect_result, collect_sweep

    raw, selections = args.raw or RAW, args.selections or RAW.parent / "selections"
    for path in args.paths:
        targets = (collect_sweep(path, out=raw, selections=selections) if Path(path, "final").is_dir()
                   else [collect_result(path, raw, args.rescored or RESCORED)])
        for target in targets:
            print(f"  {target}")
    return 0


def command_tables(args) -> int:
    from benchmarks.report.readme import refresh_readme, unquoted_intervals
    from benchmarks.report.regenerate import regenerate

    for path in regenerate(args.results):
        print(f"  {path}")
    if args.readme:
        suites = refresh_readme(args.readme, Path(args.results) / "tables")
        print(f"  {args.readme} (tables: {', '.join(suites) or 'none'})")
        stale = unquoted_intervals(args.readme, args.results)
        if stale:  # the tables moved under a sentence that still quotes the old numbers
            print(f"{args.readme}: its prose quotes {len(stale)} score(s) no generated table holds (stale after a "
                  f"rerun?): {'; '.join(stale)}", file=sys.stderr)
            return 1
    return 0


def command_judge_agreement(args) -> int:
    from benchmarks.experiments.judge_agreement import MODELS, run_agreement
    from benchmarks.report.judge_agreement import write_agreement

    results = Path(args.results)
    run_agreement(args.judges, results / "judges" / "raw", per_model=args.per_model, seed=args.seed,
                  models=args.models or MODELS)
    for path in write_agreement(results / "judges" / "raw", results / "judges", results / "tables",
                                results / "plots"):
        print(f"  {path}")
    return 0


def include_task_folders(folders: list[str]) -> None:
    """Register the tasks of ``--tasks-dir`` folders, here and (through ``$REFT_TASKS_PATH``) in every
    process this command starts (a sweep's jobs)."""
    import os

    from benchmarks.tasks.registry import TASKS_PATH_VARIABLE, include_tasks

    resolved = [str(Path(folder).expanduser().resolve()) for folder in folders]
    for folder in resolved:
        include_tasks(folder)
    inherited = [f for f in os.environ.get(TASKS_PATH_VARIABLE, "").split(os.pathsep) if f and f not in resolved]
    os.environ[TASKS_PATH_VARIABLE] = os.pathsep.join([*resolved, *inherited])


def offline_wandb_runs(roots: list[str]) -> list[Path]:
    """Every offline W&B run folder (``offline-run-*``) under ``roots`` (run directories keep their own)."""
    found = []
    for root in roots:
        found += sorted(p for p in Path(root).rglob("offline-run-*") if p.is_dir())
    return found


def command_wandb_sync(args) -> int:
    import subprocess

    runs = offline_wandb_runs(args.roots)
    for run in runs:
        print(f"  {run}")
    print(f"{len(runs)} offline W&B run(s) under {', '.join(args.roots)}")
    if args.dry_run or not runs:
        return 0
    return subprocess.run([sys.executable, "-m", "wandb", "sync", *map(str, runs)]).returncode


def command_cluster(args) -> int:
    from slurm import cluster_service

    if args.action == "up":
        try:
            state, started = cluster_service.up(args.partition)
        except cluster_service.SlurmClusterError as error:  # daemons missing, not root, a daemon died
            print(f"reft cluster: error: {error}", file=sys.stderr)
            return 1
        print(f"local SLURM cluster {'started' if started else 'already running'}: partition {state['partition']}, "
              f"supervisor pid {state['pid']}, SLURM_CONF={state['env']['SLURM_CONF']}\n"
              'clients: eval "$(reft cluster env)"; stop it with `reft cluster down`')
        return 0
    if args.action == "down":
        state = cluster_service.down()
        print("no local SLURM cluster is running" if state is None else f"stopped the cluster at {state['root']}")
        return 0
    state = cluster_service.status()
    if state is None:
        print("no local SLURM cluster is running (`reft cluster up` starts one)", file=sys.stderr)
        return 1
    if args.action == "env":
        print(cluster_service.env_lines(state), end="")
        return 0
    print(f"running: supervisor pid {state['pid']}, partition {state['partition']}, root {state['root']}\n"
          f"node: {state['node']}\nqueue:\n{state['queue'] or '(empty)'}")
    return 0


def command_tasks(args) -> int:
    from benchmarks.tasks import TASKS

    if args.export_lm_eval:
        from benchmarks.lm_eval_tasks import export_tasks

        written = export_tasks(args.export_lm_eval, args.tasks, split=args.split, limit=args.limit)
        for path in written:
            print(f"  {path}")
        names = ",".join(f"reft_{path.stem}" for path in written[:2])  # <suite>_<name>.yaml
        print(f"{len(written)} lm-eval tasks in {args.export_lm_eval}; run one with\n"
              f"  reft lm-eval --model_args pretrained=BASE[,checkpoint=RUN/model] "
              f"--include_path {args.export_lm_eval} --tasks {names}")
        return 0
    if args.tasks or args.split or args.limit:
        raise ValueError("--tasks, --split and --limit go with --export-lm-eval")
    for key, task in sorted(TASKS.items()):
        changed = "" if task.fingerprint() == task.recorded_fingerprint else \
            f"  (fingerprint {task.fingerprint()}; its YAML records {task.recorded_fingerprint!r}: bump the version)"
        print(f"{key:<32} v{task.version}  {task.kind:<9} splits: {', '.join(sorted(task.splits))}{changed}")
    return 0


def method_keys(text: str) -> list[str]:
    """``--methods loreft_sst2,lora_sst2`` → the sweep's method keys."""
    return text.split(",")


def main(argv: list[str] | None = None) -> int:
    from benchmarks.experiments.locks import LockHeld
    from reft.train import TrainingFailed
    from benchmarks.sweeps.spec import RunsFailed

    parser = argparse.ArgumentParser(prog="reft", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks-dir", action="append", default=[], metavar="DIR",
                        help="a folder of your own tasks (<suite>/<task>.yaml; new suites allowed), before the "
                             "command; repeatable; also $REFT_TASKS_PATH (os.pathsep-separated)")
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train and evaluate one experiment")
    train.add_argument("config")
    train.add_argument("overrides", nargs="*", help="key=value, e.g. train.lr=3e-4 seed=43")
    train.add_argument("--overwrite", action="store_true",
                       help="delete a run directory of another configuration (same name and seed) and run this one")
    train.set_defaults(run=command_train)
    evaluate = commands.add_parser("eval", help="re-score a finished run")
    evaluate.add_argument("run_dir")
    evaluate.add_argument("overrides", nargs="*", help="e.g. 'data.eval=[arithmetic/aqua]' eval.decoding=paper")
    evaluate.add_argument("--label", help="name of the results folder (default: a hash of the overrides)")
    evaluate.add_argument("--allow-changed-task", action="store_true",
                          help="score tasks whose template/extractor/metric changed since the run scored them")
    evaluate.set_defaults(run=command_eval)
    sweep = commands.add_parser("sweep", help="launch a sweep (or: reft sweep status SPEC)")
    sweep.add_argument("spec", help="sweep YAML, or 'status'")
    sweep.add_argument("overrides", nargs="*", help="key=value overrides of the sweep spec")
    sweep.add_argument("--stage", choices=["dev", "final", "all"], default="all")
    sweep.add_argument("--executor", choices=["local", "slurm", "debug"])
    sweep.add_argument("--no-wait", action="store_true", help="submit and return (slurm)")
    sweep.add_argument("--methods", type=method_keys,
                       help="only these methods (comma-separated keys; 'floors' adds the spec's untrained runs)")
    sweep.add_argument("--overwrite-stale", action="store_true",
                       help="rerun runs whose directories hold another configuration's run (an edited spec)")
    sweep.set_defaults(run=command_sweep)
    select = commands.add_parser("select", help="choose settings from dev-stage results")
    select.add_argument("spec")
    select.add_argument("overrides", nargs="*")
    select.add_argument("--methods", type=method_keys, help="only these methods (comma-separated keys)")
    select.set_defaults(run=command_select)
    reproduce = commands.add_parser("reproduce", help="a suite end to end: sweep, select, final, tables")
    reproduce.add_argument("suite", choices=["commonsense", "arithmetic", "instruction", "glue"])
    reproduce.add_argument("overrides", nargs="*", help="key=value overrides of the sweep spec")
    reproduce.add_argument("--preset", choices=["auto", "cpu", "paper"], default="auto")
    reproduce.add_argument("--quick", action="store_true",
                           help="the committed dev selection instead of the dev stage, and the first seed only")
    reproduce.set_defaults(run=command_reproduce)
    collect = commands.add_parser("collect", help="copy finished results into results/raw")
    collect.add_argument("paths", nargs="+", help="run directories or sweep roots")
    collect.add_argument("--raw", help="where results go: RAW/<suite>/<run>__seed<seed>.json (default: the repo's "
                         "results/raw; a learning curve: results/curves/<sweep>)")
    collect.add_argument("--selections", help="where a sweep's selection record goes (default: results/selections)")
    collect.add_argument("--rescored", help="where a re-scoring (RUN/evals/LABEL) goes (default: results/rescored)")
    collect.set_defaults(run=command_collect)
    tables = commands.add_parser("tables", help="regenerate results/tables and results/plots from results/raw")
    tables.add_argument("--results", default="results", help="folder holding raw/; tables/ and plots/ go there")
    tables.add_argument("--readme", help="also refresh this file's <!-- table:SUITE --> blocks from the tables")
    tables.set_defaults(run=command_tables)
    agreement = commands.add_parser("judge-agreement",
                                    help="measure offline judges against GPT-4's AlpacaEval decisions")
    agreement.add_argument("--judges", type=method_keys, default=["length", "local_lm"],
                           help="comma-separated offline judges (benchmarks/experiments/judges.py)")
    agreement.add_argument("--per-model", type=int, help="a seeded sample of this many instructions per model "
                           "(default: all 805)")
    agreement.add_argument("--seed", type=int, default=0, help="the sample's seed")
    agreement.add_argument("--models", type=method_keys, help="annotated models (default: all three)")
    agreement.add_argument("--results", default="results", help="records go to RESULTS/judges/raw")
    agreement.set_defaults(run=command_judge_agreement)
    sync = commands.add_parser("wandb-sync", help="sync every offline W&B run under runs/ and sweeps/ (needs the network)")
    sync.add_argument("roots", nargs="*", default=["runs", "sweeps"], help="folders to search (default: runs sweeps)")
    sync.add_argument("--dry-run", action="store_true", help="list the runs, sync nothing")
    sync.set_defaults(run=command_wandb_sync)
    cluster = commands.add_parser("cluster", help="the local single-node SLURM cluster: up, down, status, env")
    cluster.add_argument("action", choices=["up", "down", "status", "env"])
    cluster.add_argument("--partition", default="debug", help="the partition's name (up)")
    cluster.set_defaults(run=command_cluster)
    tasks = commands.add_parser("tasks", help="list registered tasks, or export them for lm-eval")
    tasks.add_argument("--export-lm-eval", metavar="DIR", help="write the generation tasks as lm-eval task "
                       "YAMLs (and their rows) into DIR")
    tasks.add_argument("--tasks", type=method_keys, help="only these tasks (comma-separated keys, "
                       "e.g. commonsense/boolq,arithmetic/gsm8k)")
    tasks.add_argument("--split", help="the split to export (default: each task's default split)")
    tasks.add_argument("--limit", type=int, help="the first N rows only")
    tasks.set_defaults(run=command_tasks)
    commands.add_parser("lm-eval", help="lm-eval's CLI with the reft model registered (reft lm-eval --help)",
                        add_help=False)
    if argv is None:
        argv = sys.argv[1:]
    if argv and argv[0] == "lm-eval":  # everything after goes to lm-eval's own parser
        from benchmarks.lm_eval_adapter import main as lm_eval_main

        lm_eval_main(list(argv[1:]))
        return 0
    args, extra = parser.parse_known_args(argv)
    # overrides may come after options (`reft sweep SPEC --executor slurm key=value`): argparse leaves them over
    if extra and hasattr(args, "overrides") and all("=" in e and not e.startswith("-") for e in extra):
        args.overrides = [*args.overrides, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        if args.tasks_dir:
            include_task_folders(args.tasks_dir)
        return args.run(args)
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        print(f"reft {args.command}: error: {error}", file=sys.stderr)
        return 2
    except (RunsFailed, LockHeld, TrainingFailed) as error:
        print(f"reft {args.command}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
