"""results/README.md, generated: one row per results directory (every results/*/summary.json) with the
command that made it, its commit, config and evaluation-set hashes and headline numbers, so that a reader sees
what is there and whether it is current (`python eval.py index`)."""

import hashlib
import json
from pathlib import Path

from common.cli import UsageError
from common.files import write_atomic
from configs import PRESETS, SWEEPS, comparable, config_changes
from experiment.metrics import mean_ci
from experiment.summary import has_pgr, read_summary
from models.objectives import variant


def config_hash(config: dict) -> str:
    """sha256 of the canonical JSON of a config without experiment.variants (a sweep is the same experiment)."""
    return hashlib.sha256(json.dumps(comparable(config), sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def command(name: str, summary: dict) -> str:
    """The command that made the results directory `name`: as recorded, or else derived from the name
    (PRESET or PRESET-SWEEP) and the config fields that differ from the preset; "?" if neither fits."""
    if "command" in summary:
        return summary["command"]
    preset, _, sweep = name.partition("-")
    if preset not in PRESETS or (sweep and sweep not in SWEEPS):
        return "?"
    changed = config_changes(PRESETS[preset].to_dict(), summary["config"])
    config = summary["config"]
    # a field the summary lacks (results older than the field) cannot be given as an option
    fields = [field.split(".") for field in changed if field.split(".")[1] in config.get(field.split(".")[0], {})]
    options = [f"--{section}.{field} {config[section][field]}" for section, field in fields]
    variants = config["experiment"].get("variants")
    if not sweep and variants is not None and variants != PRESETS[preset].experiment.variants:
        options.append(f"--experiment.variants {variants}")
    return " ".join(["python train.py --preset", preset, *(["--sweep", sweep] if sweep else []), *options])


def current(name: str, summary: dict) -> str:
    """Whether the preset the directory is named after still has the config the results were made with."""
    preset = name.partition("-")[0]
    if preset not in PRESETS:
        return "?"
    changed = config_changes(summary["config"], PRESETS[preset].to_dict())
    return "yes" if not changed else f"no: the preset changed {', '.join(changed)}"


def headline(summary: dict) -> str:
    """capability_ok, and PGR beyond n (mean [95% interval]) of the frozen reporter and of the best variant
    (with an overseer, also the shares of its answers that are the truth's and the overseer's where they differ);
    for a summary of family-split cells (the columns sweep), the held-out family's accuracy at the fewest and
    the most labelled families instead."""
    variants = summary["variants"]
    if columns := summary.get("columns"):
        ks = sorted({e["k"] for e in columns})
        held = {k: [v for e in columns if e["k"] == k for v in e["held_out_acc"]["per_seed"]] for k in (ks[0], ks[-1])}
        capable = str(summary.get("capability", {}).get("capability_ok", "?")).lower()
        shown = [
            f"held-out family acc k={k} {mean_ci(v)[0]:.2f} [{mean_ci(v)[1]:.2f}, {mean_ci(v)[2]:.2f}]"
            for k, v in held.items()
        ]
        return "; ".join([f"capability_ok {capable}", *shown])
    pgr = {name: v["pgr_beyond_n"] for name, v in variants.items() if has_pgr(v) and v["seeds"]}
    parts = [f"capability_ok {str(summary.get('capability', {}).get('capability_ok', '?')).lower()}"]
    shown = [n for n in ("frozen",) if n in pgr]
    reporters = [n for n in pgr if not _labels_up_to_N(n)]  # not the oracle or the probe: labels on all sizes
    best = max(reporters, key=lambda n: pgr[n]["mean"], default=None)
    if best and best not in shown:
        shown.append(best)
    parts += [f"PGR {n} {pgr[n]['mean']:.2f} [{pgr[n]['ci95'][0]:.2f}, {pgr[n]['ci95'][1]:.2f}]" for n in shown]
    if "overseer" in summary and (policy := variants.get("frozen", {}).get("pooled", {}).get("policy")):
        parts.append(f"frozen where o != d: truthful {policy['truthful']:.2f}, overseer {policy['overseer']:.2f}")
    return "; ".join(parts)


def _labels_up_to_N(name: str) -> bool:
    try:
        return variant(name).labels_up_to_N
    except ValueError:  # a variant this code no longer knows: not one of today's baselines
        return False


def index_rows(results_root: Path) -> list[dict]:
    """One row per directory of `results_root` that holds a summary.json, by name."""
    out = []
    for path in sorted(results_root.glob("*/summary.json")):
        summary = read_summary(path)
        name, code = path.parent.name, (summary.get("provenance") or {}).get("code") or {}
        seeds = summary["config"]["experiment"].get("seeds", "?")
        commit = code.get("commit", "?")[:10] + (" (dirty)" if code.get("dirty") else "")
        out.append(
            {
                "results": f"[{name}/]({name}/)",
                "command": f"`{command(name, summary)}`",
                "commit": commit,
                "config": config_hash(summary["config"])[:12],
                "evaluation set": summary["eval_set_hash"][:12],
                "variants × seeds": f"{sum(bool(v['seeds']) for v in summary['variants'].values())} × {seeds}",
                "headline": headline(summary),
                "config = preset now": current(name, summary),
            }
        )
    return out


def index_markdown(rows: list[dict]) -> str:
    lines = [
        "# Results",
        "",
        "Generated by `python eval.py index` from every `results/*/summary.json`; do not edit. Hashes: the "
        "config's (sha256 of its canonical JSON without experiment.variants) and the evaluation set's content hash, "
        "first 12 hex digits; runs with the same evaluation set can be compared (`python eval.py compare`). PGR: "
        "on sizes n+1..N, mean [95% interval] over seeds, of frozen and of the best reporter beside it (not the "
        "oracle or the probes: they have labels up to N; not a PGR against an oracle below 0.9, ceiling_ok false). "
        "Variants: the trained ones, not the label-free baselines.",
        "",
    ]
    if not rows:
        return "\n".join([*lines, "No results directories yet.", ""])
    lines += ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(row.values()) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_index(results_root: Path) -> Path:
    """results_root/README.md from every results directory under it; returns its path."""
    if not results_root.is_dir():
        raise UsageError(f"{results_root} is not a directory")
    path = results_root / "README.md"
    text = index_markdown(index_rows(results_root))
    write_atomic(path, lambda f: f.write(text.encode()))
    return path
