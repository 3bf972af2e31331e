"""Evaluate a run: every report variant and seed on the run's fixed evaluation set, with baselines.

    python eval.py --run runs/quick                # writes results/quick/{summary.json,metrics.csv,*.png}
    python eval.py --run runs/quick --results out/
    python eval.py --run runs/quick --sweep consistency

For each graph size n_min..N+eval_beyond it measures, per variant (mean and 95% interval over seeds):
acc and mae of d(s,u) over every vertex u of the unique s-t path; the consistency-check outcomes
(consistent, incoherent, coherent_wrong = passes every check yet is wrong); PGR on sizes > n against the
trivial and oracle baselines; and beside them the capability numbers (pretrained d(s,t), probe). The same
metrics are also broken down by the true distance d(s,u).
"""

import argparse
import json
import sys
from pathlib import Path

from common.cli import Parser, UsageError, enable_compilation_cache, fail
from configs import sweep_variants


def main(argv: list[str] | None = None) -> None:
    parser = Parser(prog="eval.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="run directory written by train.py")
    parser.add_argument("--results", type=Path, help="where to write results (default: results/RUN_NAME[-SWEEP])")
    parser.add_argument("--sweep", help="evaluate a sweep's grid (see train.py --sweep) instead of the run's variants")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace results there of a different config or evaluation set"
    )
    args = parser.parse_args(argv)
    try:
        names = sweep_variants(args.sweep) if args.sweep is not None else None
    except UsageError as e:
        fail(parser.prog, str(e))
    enable_compilation_cache()
    from experiment.evaluate import evaluate_run
    from experiment.results import default_results_dir
    from experiment.rundir import RunError

    try:
        results = args.results or default_results_dir(args.run.name, args.sweep)
        summary = evaluate_run(args.run, results, names, overwrite=args.overwrite)
    except RunError as e:
        fail(parser.prog, str(e))
    print(json.dumps(summary["capability"]["d_st_acc_by_size"]), file=sys.stderr)


if __name__ == "__main__":
    main()
