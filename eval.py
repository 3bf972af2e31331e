"""Evaluate a run: every report variant and seed on the run's fixed evaluation set, with baselines.

    python eval.py --run runs/quick                # writes results/quick/{summary.json,metrics.csv,*.png}
    python eval.py --run runs/quick --results out/
    python eval.py --run runs/quick --sweep consistency
    python eval.py compare results/quick results/quick-bellman --out compare/   (see eval.py compare --help)
    python eval.py index                           # writes results/README.md, one row per results directory

For each graph size n_min..N+eval_beyond it measures, per variant (mean and 95% interval over seeds):
acc and mae of d(s,u) over every vertex u of the unique s-t path; the consistency-check outcomes
(consistent, incoherent, coherent_wrong = passes every check yet is wrong); knows vs. says against the
self-query (the pretrained d(s,t) head asked with t := u: knows_says, knows_withholds, says_unknowing,
neither, agrees); PGR on sizes > n against the trivial baseline and the oracle of the variant's own head
(ceiling_ok: that oracle reaches 0.9); and beside them the capability numbers (pretrained d(s,t), self-query,
probes). The same metrics are also broken down by the true distance d(s,u) on sizes up to N (past N the model
was never pretrained), and there, on the held-out queries, what each reporter answers instead: its answers,
the candidate policies that explain its wrong answers (experiment/policies.py) and the rank and probability it
gives the truth.
"""

import argparse
import json
import sys
from pathlib import Path

from common.cli import Parser, UsageError, add_plots_option, enable_compilation_cache, fail
from configs import sweep


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["compare"]:
        return compare_main(argv[1:])
    if argv[:1] == ["index"]:
        return index_main(argv[1:])
    parser = Parser(prog="eval.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="run directory written by train.py")
    parser.add_argument("--results", type=Path, help="where to write results (default: results/RUN_NAME[-SWEEP])")
    parser.add_argument("--sweep", help="evaluate a sweep's grid (see train.py --sweep) instead of the run's variants")
    parser.add_argument(
        "--data",
        type=Path,
        help="evaluate on this .npz file in the data contract (docs/design.md; e.g. from graphgen.from_networkx) "
        "instead of the run's evaluation set (default results: results/RUN_NAME-FILE_STEM)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace results there of a different config or evaluation set"
    )
    add_plots_option(parser)
    args = parser.parse_args(argv)
    try:
        grid = sweep(args.sweep) if args.sweep is not None else None
    except UsageError as e:
        fail(parser.prog, str(e))
    enable_compilation_cache()
    from experiment.evaluate import evaluate_run
    from experiment.results import default_results_dir
    from experiment.rundir import RunError, load_config

    try:
        names = grid and grid(load_config(args.run).data)
        results = args.results or default_results_dir(args.run.name, args.sweep, args.data)
        summary = evaluate_run(
            args.run, results, names, overwrite=args.overwrite, command=["eval.py", *argv], data=args.data,
            plots=args.plots,
        )  # fmt: skip
    except (RunError, UsageError) as e:
        fail(parser.prog, str(e))
    print(json.dumps(summary["capability"]["d_st_acc_by_size"]), file=sys.stderr)


COMPARE = """Overlay the same curves of several results directories: accuracy, coherent-but-wrong (and withheld, where
every run reports it) by size, and PGR beyond n, with seeds as 95%-interval bands and n, N marked; the same
numbers as compare.csv, the headline as compare.md.

    python eval.py compare results/quick results/quick-bellman --out compare/quick-vs-bellman
    python eval.py compare results/quick results/quick-consistency --variants frozen,frozen@bellman,oracle

Runs evaluated on different evaluation sets (hash) or with a different n or N are refused unless --mix is
given; the figures and table of a mixed comparison say so."""


def compare_main(argv: list[str]) -> None:
    parser = Parser(prog="eval.py compare", description=COMPARE, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path, nargs="+", help="results directories (each with a summary.json)")
    parser.add_argument("--out", type=Path, help="where to write the comparison (default: compare/NAME-vs-NAME...)")
    parser.add_argument("--variants", help="comma-separated variants to show (default: every variant of every run)")
    parser.add_argument("--mix", action="store_true", help="compare runs on different evaluation sets or n/N")
    args = parser.parse_args(argv)
    from experiment.compare import load_summaries
    from experiment.results import write_comparison

    try:
        if len(args.results) < 2:
            raise UsageError("give at least two results directories to compare")
        summaries = load_summaries(args.results)
        out = args.out or Path("compare") / "-vs-".join(d.name for d in args.results)
        variants = args.variants.split(",") if args.variants else None
        written = write_comparison(summaries, out, variants, mix=args.mix)
    except (UsageError, OSError) as e:
        fail(parser.prog, str(e))
    print(f"comparison: {out}/{{{','.join(written)}}}", file=sys.stderr)


def index_main(argv: list[str]) -> None:
    parser = Parser(
        prog="eval.py index",
        description="Write RESULTS/README.md: one row per results directory (the command that made it, commit, "
        "config and evaluation-set hashes, headline numbers).",
    )
    parser.add_argument("--results", type=Path, default=Path("results"), help="the results root (default: results)")
    args = parser.parse_args(argv)
    from experiment.index import write_index

    try:
        path = write_index(args.results)
    except (UsageError, OSError) as e:
        fail(parser.prog, str(e))
    print(f"index: {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
