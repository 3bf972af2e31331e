"""The whole experiment: pretrain d(s,t), fine-tune d(s,u) report variants, evaluate against baselines.

    python train.py --preset quick                         # 2-core CPU, ~9 min: results/quick/
    python train.py --preset quick --sweep consistency     # the consistency-loss grid: results/quick-consistency/
    python train.py --preset scale                         # N/n = 4 (N = 24, labels <= 6), 2-core CPU, ~80 min
    python train.py --preset quick --sweep overseer --data.overseer nearsighted --pretrain.steps 2400
    python train.py --preset paper --model.width 256       # any config field can be overridden
    python train.py --preset quick --experiment.variants frozen,frozen@range+bellman=0.5,oracle
    python train.py --preset quick --resume                # continue a killed run to the same numbers
    python train.py --preset paper --distributed           # one process per host of a multi-host GPU/TPU job

Phases: (1) pretrain the encoder and d(s,t) head on sizes n_min..N, once per pretraining config: the
pretrained model is kept in a shared store ($PATHPROBE_PRETRAINED, default ~/.cache/pathprobe/pretrained)
under a hash of the data, model and pretraining config and of the code, and every run with the same hash
reuses it (delete the entry to pretrain again); (2) for every variant and seed,
fine-tune a d(s,u) reporter with labels on sizes n_min..n (the oracle and probe baselines: n_min..N), plus
any consistency losses on unlabelled sizes n+1..N; (3) evaluate on the run's fixed evaluation set (what
eval.py does). A run keeps its config, metrics log (JSON lines), evaluation set and orbax checkpoints in
--run-dir (default runs/PRESET); results go to --results-dir (default results/PRESET): summary.json,
metrics.csv and plots.

Every train step is data-parallel over all devices (of every host, with --distributed): a mesh with one
`data` axis splits each step's batch; parameters are replicated, or sharded with --pretrain.shard_params true.
"""

import argparse
import dataclasses
import sys
from pathlib import Path

from common.cli import Parser, UsageError, add_plots_option, enable_compilation_cache, fail
from configs import PRESETS, SWEEPS, Config, preset, sections, sweep_variants


def build_parser() -> Parser:
    """Every config field is an option --SECTION.FIELD, its default the preset's."""
    parser = Parser(prog="train.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="quick", help=f"named config: {', '.join(PRESETS)} (default: quick)")
    parser.add_argument("--run-dir", type=Path, help="checkpoints, log, eval set (default: runs/PRESET)")
    parser.add_argument("--results-dir", type=Path, help="result files (default: results/PRESET)")
    parser.add_argument("--resume", action="store_true", help="continue from the run's latest checkpoint")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="discard an existing run in --run-dir and replace results of a different experiment in --results-dir",
    )
    parser.add_argument(
        "--sweep",
        help=f"train and evaluate a grid of variants instead of experiment.variants: {', '.join(SWEEPS)}. Shares "
        "the run's pretraining, skips finished cells (a killed sweep resumes when run again) and writes "
        "results/PRESET-SWEEP",
    )
    add_plots_option(parser)
    parser.add_argument(
        "--distributed",
        action="store_true",
        help="one process of a multi-process job: jax.distributed.initialize(), the coordinator, process count "
        "and id read from the launcher (SLURM, Open MPI, Cloud TPU) unless given below (see README)",
    )
    parser.add_argument("--coordinator", help="with --distributed: ADDRESS:PORT of process 0")
    parser.add_argument("--num-processes", type=int, help="with --distributed: the number of processes")
    parser.add_argument("--process-id", type=int, help="with --distributed: this process's id, 0..N-1")
    for section in sections():
        group = parser.add_argument_group(f"{section.name} config (defaults shown are the quick preset's)")
        quick = getattr(PRESETS["quick"], section.name)
        for f in dataclasses.fields(section.type):
            group.add_argument(
                f"--{section.name}.{f.name}",
                dest=f"{section.name}.{f.name}",
                type=_bool if isinstance(f.default, bool) else type(f.default),
                metavar=type(f.default).__name__.upper(),
                help=f"{f.metadata['help']} (quick: {getattr(quick, f.name)})",
            )
    return parser


def _bool(text: str) -> bool:
    if text.lower() not in ("true", "false", "1", "0"):
        raise argparse.ArgumentTypeError(f"'{text}' is not true or false")
    return text.lower() in ("true", "1")


def config_from_args(args: argparse.Namespace) -> Config:
    """The preset with every option given on the command line applied, validated."""
    changes = {
        section.name: {
            f.name: getattr(args, f"{section.name}.{f.name}")
            for f in dataclasses.fields(section.type)
            if getattr(args, f"{section.name}.{f.name}") is not None
        }
        for section in sections()
    }
    cfg = preset(args.preset).replace(**changes)
    cfg.validate()
    return cfg


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.distributed:
        import jax

        jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU devices of several processes
        # Before anything touches a device: the mesh then spans every process's devices.
        jax.distributed.initialize(args.coordinator, args.num_processes, args.process_id)
    from experiment import rundir
    from experiment.results import default_results_dir, refuse_to_replace

    try:
        cfg = config_from_args(args)
        names = sweep_variants(args.sweep, cfg.data) if args.sweep is not None else cfg.experiment.variant_list()
        run_dir = args.run_dir or Path("runs") / args.preset
        results_dir = args.results_dir or default_results_dir(args.preset, args.sweep)
        if results_dir.exists() and not results_dir.is_dir():
            raise UsageError(f"--results-dir {results_dir} is not a directory")
        if not args.overwrite:  # before training; the evaluation also checks the evaluation set's hash
            refuse_to_replace(results_dir / "summary.json", cfg.to_dict())
        rundir.prepare(run_dir, cfg, resume=args.resume or args.sweep is not None, overwrite=args.overwrite)
        results_dir.mkdir(parents=True, exist_ok=True)
    except (UsageError, OSError) as e:
        fail(parser.prog, str(e))

    if not args.distributed:
        # Off in a multi-process job: a process there loaded a program cached by a one-process run with as many
        # devices, whose collectives never meet the other processes' (the job hung at its first host sync).
        enable_compilation_cache()
    from experiment.evaluate import capability_report, evaluate_run
    from experiment.hosts import say
    from experiment.phases import finetune
    from experiment.pretrained import pretrained_for

    try:
        pretrained = pretrained_for(cfg, run_dir)
        finetune(cfg, run_dir, names, pretrained)
        command = ["train.py", *(sys.argv[1:] if argv is None else argv)]
        summary = evaluate_run(run_dir, results_dir, names, overwrite=args.overwrite, command=command, plots=args.plots)
    except rundir.RunError as e:
        fail(parser.prog, str(e))
    say(capability_report(summary["capability"]))
    say(f"results: {results_dir}/summary.json, metrics.csv{', *.png' if args.plots else ''}")


if __name__ == "__main__":
    main()
