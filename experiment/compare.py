"""Comparing results directories: the same curves of several runs side by side. Pure functions of loaded
summaries (except `load_summaries`): what is comparable, what to show and the tables; the figures are
experiment/plots.py: plot_comparison, and experiment/results.py: write_comparison writes both.

Runs evaluated on different evaluation sets, or with a different n (labels end) or N (pretraining ends), are
refused unless the caller asks to mix them; a mixed comparison says so in its table and on every figure."""

import csv
import io
from pathlib import Path

from common.cli import UsageError
from experiment.summary import pgr_note, read_summary

# The curves by size that a comparison draws, where every run has them (knows_withholds: since the self-query).
CURVES = {
    "acc": "d(s,u) accuracy",
    "knows_withholds": "knows but withholds (self-query right, report wrong)",
    "coherent_wrong": "coherent but wrong (fraction of queries)",
}


def load_summaries(dirs: list[Path]) -> dict[str, dict]:
    """Run label -> summary.json of each results directory; the label is the directory's name, or its whole
    path where two names are the same. UsageError (one line) for a missing or unreadable summary."""
    names = [d.name for d in dirs]
    summaries = {}
    for d in dirs:
        if not d.is_dir():
            raise UsageError(f"{d} is not a directory")
        summaries[d.name if names.count(d.name) == 1 else str(d)] = read_summary(d / "summary.json")
    if len({d.resolve() for d in dirs}) < len(dirs) or len(summaries) < len(dirs):
        raise UsageError("the same results directory is given twice")
    return summaries


def limits(summary: dict) -> tuple[int, int]:
    """(n, N): the largest labelled size and the largest pretraining size of a run."""
    return summary["n_report"], summary["config"]["data"]["n_max"]


def mismatches(summaries: dict[str, dict]) -> list[str]:
    """What makes the runs not directly comparable, one phrase each (empty: comparable)."""
    found = []
    hashes = {run: s["eval_set_hash"] for run, s in summaries.items()}
    if len(set(hashes.values())) > 1:
        found.append("different evaluation sets (" + ", ".join(f"{r}: {h[:12]}…" for r, h in hashes.items()) + ")")
    for i, what in enumerate(("n", "N")):
        values = {run: limits(s)[i] for run, s in summaries.items()}
        if len(set(values.values())) > 1:
            found.append(f"different {what} (" + ", ".join(f"{r}: {v}" for r, v in values.items()) + ")")
    return found


def check(summaries: dict[str, dict], mix: bool) -> list[str]:
    """The mismatches of `summaries`; UsageError (one line) if there are some and `mix` is false."""
    found = mismatches(summaries)
    if found and not mix:
        raise UsageError(f"the runs are not comparable: {'; '.join(found)}; pass --mix to compare them anyway")
    return found


def select(summaries: dict[str, dict], variants: list[str] | None) -> dict[str, list[str]]:
    """Run -> the variants to show: `variants` where the run has them (UsageError if none has one), else all."""
    if variants is None:
        return {run: list(s["variants"]) for run, s in summaries.items()}
    missing = [v for v in variants if not any(v in s["variants"] for s in summaries.values())]
    if missing:
        raise UsageError(f"no run has the variant(s) {', '.join(missing)}")
    return {run: [v for v in variants if v in s["variants"]] for run, s in summaries.items()}


BY = ("size", "distance")  # the axes a comparison draws its curves against


def curves(summaries: dict[str, dict], by: str = "size") -> list[str]:
    """The metrics of CURVES that every run reports by `by` (size, or true distance: none where a run lacks it)."""
    tables = [v.get(f"by_{by}") for s in summaries.values() for v in s["variants"].values()]
    if not all(tables):
        return []
    return [m for m in CURVES if all(m in row for table in tables for row in table.values())]


def rows(summaries: dict[str, dict], shown: dict[str, list[str]]) -> list[dict]:
    """Every number the figures show, one row each: by size and by true distance for each curve (the column of
    the other left empty), and PGR pooled over sizes n+1..N (where it counts, `pgr_note`)."""
    out = []
    for run, summary in summaries.items():
        for name in shown[run]:
            table = summary["variants"][name]
            base = {"run": run, "variant": name, "seeds": table["seeds"]}
            for by in BY:
                for metric in curves(summaries, by):
                    for key, row in sorted(table[f"by_{by}"].items(), key=lambda kv: int(kv[0])):
                        low, high = row.get(f"{metric}_ci95", [row[metric], row[metric]])
                        at = {"size": key if by == "size" else "", "distance": key if by == "distance" else ""}
                        out.append({**base, "metric": metric, **at, "mean": row[metric], "low": low, "high": high})
            if "pgr_beyond_n" in table and not pgr_note(name, table):
                pgr = table["pgr_beyond_n"]
                n, big_n = limits(summary)
                out.append(
                    {**base, "metric": "pgr_beyond_n", "size": f"{n + 1}..{big_n}", "distance": "", "mean": pgr["mean"]}
                    | dict(zip(("low", "high"), pgr["ci95"], strict=True))
                )
    return out


def headline(summaries: dict[str, dict], shown: dict[str, list[str]]) -> list[dict]:
    """Per run and variant: accuracy averaged over the sizes up to n, n+1..N and beyond N (each size counts
    once), coherent-but-wrong over n+1..N, and PGR beyond n with its interval."""
    out = []
    for run, summary in summaries.items():
        n, big_n = limits(summary)
        for name in shown[run]:
            table = summary["variants"][name]
            by_size = {int(k): row for k, row in table["by_size"].items()}

            def mean(metric: str, lo: int, hi: float, by_size=by_size) -> float | None:
                values = [row[metric] for size, row in by_size.items() if lo <= size <= hi]
                return sum(values) / len(values) if values else None

            pgr, note = table.get("pgr_beyond_n"), pgr_note(name, table)
            out.append(
                {
                    "run": run,
                    "variant": name,
                    "seeds": table["seeds"],
                    "acc ≤ n": mean("acc", 0, n),
                    "acc n+1..N": mean("acc", n + 1, big_n),
                    "acc > N": mean("acc", big_n + 1, float("inf")),
                    "coherent_wrong n+1..N": mean("coherent_wrong", n + 1, big_n),
                    "PGR beyond n": f"— ({note})"
                    if note
                    else pgr and f"{pgr['mean']:.3f} [{pgr['ci95'][0]:.3f}, {pgr['ci95'][1]:.3f}]",
                }
            )
    return out


def to_csv(table: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(table[0]))
    writer.writeheader()
    writer.writerows({k: f"{v:.6g}" if isinstance(v, float) else v for k, v in row.items()} for row in table)
    return out.getvalue()


def to_markdown(table: list[dict], summaries: dict[str, dict], found: list[str]) -> str:
    """The headline table, under what was compared and, for a mixed comparison, a warning."""
    runs = ", ".join(f"{run} (n={limits(s)[0]}, N={limits(s)[1]})" for run, s in summaries.items())
    lines = [f"# Comparison: {runs}", ""]
    if found:
        lines += [f"**Mixed comparison, not directly comparable:** {'; '.join(found)}.", ""]
    lines += [
        "Accuracy and coherent-but-wrong: the mean over seeds at each size, averaged over the sizes of the range "
        "(each size once). PGR: pooled over sizes n+1..N, mean [95% interval] over seeds; none for an oracle (the "
        "ceiling itself) or against an oracle below 0.9 there (no ceiling). Every number by size and by distance: "
        "compare.csv.",
        "",
        "| " + " | ".join(table[0]) + " |",
        "|" + "---|" * len(table[0]),
    ]
    for row in table:
        cells = ("—" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v) for v in row.values())
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
