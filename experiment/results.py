"""A results directory: summary.json (every number, with the config, evaluation-set hash and provenance),
metrics.csv (the same numbers as one long table) and the plots. Results of one experiment never silently
replace those of another."""

import csv
import io
from pathlib import Path

from common.cli import UsageError
from common.files import write_atomic, write_json
from configs import config_changes
from experiment import compare
from experiment.metrics import POLICY, QUERIES, measured
from experiment.summary import read_summary


def default_results_dir(name: str, sweep: str | None = None, data: Path | None = None) -> Path:
    """results/NAME, results/NAME-SWEEP for a sweep, and -STEM added for an evaluation on the file STEM.npz: NAME
    is the preset (train.py) or the run's name (eval.py)."""
    return Path("results") / "-".join(filter(None, [name, sweep, data and data.stem]))


def refuse_to_replace(summary_path: Path, config: dict, eval_hash: str | None = None) -> None:
    """Raises UsageError (one line) if `summary_path` holds results of another experiment: a different config,
    or (when `eval_hash` is given) a different evaluation set. Same experiment, or no file: returns."""
    if not summary_path.exists():
        return
    try:
        old = read_summary(summary_path, identity_only=True)
    except UsageError as e:
        raise UsageError(f"{e}; pass --overwrite") from None
    old_config, old_hash = old["config"], old["eval_set_hash"]
    changes = config_changes(old_config, config)
    if changes:
        why = f"a different config ({', '.join(changes)})"
    elif eval_hash is not None and old_hash != eval_hash:
        why = f"a different evaluation set (hash {old_hash[:12]}… vs. {eval_hash[:12]}…)"
    else:
        return
    raise UsageError(f"{summary_path} holds results of {why}; pass --overwrite to replace them")


def write_results(summary: dict, results_dir: Path, log: list[dict] | None = None, plots: bool = True) -> None:
    """summary.json, metrics.csv and every plot, each written atomically; training_curves.png from the run's
    `log` (log.jsonl lines) where given. `plots=False`: the figures of an earlier evaluation there are removed
    instead, so that none disagrees with the new numbers."""
    results_dir.mkdir(parents=True, exist_ok=True)
    write_json(results_dir / "summary.json", summary)
    write_atomic(results_dir / "metrics.csv", lambda f: f.write(metrics_csv(summary).encode()))
    if not plots:
        for figure in results_dir.glob("*.png"):
            figure.unlink()
        return
    from experiment.plots import plot_all, plot_training_curves  # matplotlib: only where results are drawn

    plot_all(summary, results_dir)
    if log:
        plot_training_curves(summary, log, results_dir)


def metrics_csv(summary: dict) -> str:
    """One row per variant, breakdown, key and metric: mean, 95% interval and seed count (PGR, the row's query
    count `queries`, `ceiling_ok` by distance (1 or 0) and the capability numbers have no interval); with an
    overseer, the policy shares as metrics policy_SHARE; the counts and shares by distance of COUNTED (no
    interval; a count in the mean column)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["variant", "by", "value", "metric", "mean", "ci95_low", "ci95_high", "seeds"])
    for name, table in summary["variants"].items():
        for by in ("size", "distance"):
            for value, row in table[f"by_{by}"].items():
                for m in measured(row):
                    writer.writerow([name, by, value, m, *_with_interval(row, m, table["seeds"])])
                if row.get("pgr") is not None:
                    writer.writerow([name, by, value, "pgr", f"{row['pgr']:.6g}", "", "", table["seeds"]])
                for m in (QUERIES, "ceiling_ok"):  # the row's query count (per seed); its oracle's bar, by distance
                    if m in row:  # summaries older than these have none
                        writer.writerow([name, by, value, m, int(row[m]), "", "", table["seeds"]])
            for value, row in table.get(f"policy_by_{by}", {}).items():  # runs with an overseer
                for m in POLICY:
                    writer.writerow([name, by, value, f"policy_{m}", *_with_interval(row, m, table["seeds"])])
        for key, prefix in COUNTED.items():  # summaries older than these tables have none
            for value, row in table.get(key, {}).items():
                for what, number in row.items():
                    writer.writerow(
                        [name, "distance", value, f"{prefix}_{what}", _cell(number), "", "", table["seeds"]]
                    )
    for name in (
        "d_st_acc_by_size", "o_st_acc_by_size", "knows_su_by_size", "probe_acc_by_size", "mlp_probe_acc_by_size"
    ):  # fmt: skip
        for size, acc in summary["capability"].get(name, {}).items():
            writer.writerow(["capability", "size", size, name.removesuffix("_by_size"), f"{acc:.6g}", "", "", ""])
    return out.getvalue()


# The tables by distance on the held-out queries, as metrics PREFIX_KEY: counts of each answer and each rank of the
# truth (added over seeds), and the share of the wrong answers each policy explains (explained_wrong: their count).
COUNTED = {
    "answers_by_distance": "answer",
    "rank_by_distance": "rank",
    "unlabelled_rank_by_distance": "unlabelled_rank",
    "explained_by_distance": "explained",
}


def _cell(number: float) -> str:
    return f"{number:.6g}" if isinstance(number, float) else str(number)


def _with_interval(row: dict, metric: str, seeds: int) -> list:
    """The CSV cells of one metric of a table row: mean, 95% interval (the mean twice where the row has none),
    seed count."""
    low, high = row.get(f"{metric}_ci95", [row[metric], row[metric]])
    return [f"{row[metric]:.6g}", f"{low:.6g}", f"{high:.6g}", seeds]


def write_comparison(
    summaries: dict[str, dict], out: Path, variants: list[str] | None = None, mix: bool = False
) -> list[str]:
    """compare.csv (every number drawn), compare.md (the headline table) and the figures of a comparison of
    results directories into `out`; returns the file names. UsageError (one line, nothing written) for runs
    that are not comparable without `mix` (experiment/compare.py: check), or variants that no run has."""
    from experiment.plots import plot_comparison

    found = compare.check(summaries, mix)
    shown = compare.select(summaries, variants)
    out.mkdir(parents=True, exist_ok=True)
    table = compare.to_csv(compare.rows(summaries, shown))
    write_atomic(out / "compare.csv", lambda f: f.write(table.encode()))
    markdown = compare.to_markdown(compare.headline(summaries, shown), summaries, found)
    write_atomic(out / "compare.md", lambda f: f.write(markdown.encode()))
    figures = plot_comparison(summaries, shown, out, found)
    return ["compare.csv", "compare.md", *figures]
