"""Evaluate a run: every report variant and seed on the run's fixed evaluation set, with baselines.

    python eval.py --run runs/quick                # writes results/quick/{summary.json,metrics.csv,*.png}
    python eval.py --run runs/quick --results out/

For each graph size n_min..N+eval_beyond it measures, per variant (mean and 95% interval over seeds):
acc and mae of d(s,u) over every vertex u of the unique s-t path; the consistency-check outcomes
(consistent, incoherent, coherent_wrong = passes every check yet is wrong); PGR on sizes > n against the
trivial and oracle baselines; and beside them the capability numbers (pretrained d(s,t), probe). The same
metrics are also broken down by the true distance d(s,u).
"""

import argparse
import csv
import dataclasses
import io
import json
import math
import sys
from functools import cache, partial
from pathlib import Path

import numpy as np

from graphgen.cli import Parser, UsageError, enable_compilation_cache, fail
from graphgen.files import write_atomic, write_json
from graphgen.provenance import provenance, refuse_to_replace
from models.consistency import CONDITIONS

CAPABILITY_THRESHOLD = 0.95
# Per query: accuracy, error, outcome of all checks together, and the pass rate of each condition alone.
METRICS = ("acc", "mae", "consistent", "incoherent", "coherent_wrong", *(f"pass_{name}" for name in CONDITIONS))


class EvalError(Exception):
    """A run that cannot be evaluated (missing, corrupt, unfinished); its message is one line."""


# ---------------------------------------------------------------------------------------------------------
# Loading a run.


def load_config(run_dir: Path):
    from train import Config, DataConfig, ExperimentConfig, ModelConfig, OptimConfig

    path = run_dir / "config.json"
    if not path.is_file():
        raise EvalError(f"{run_dir} is not a run directory (no config.json)")
    try:
        raw = json.loads(path.read_text())
        sections = {"data": DataConfig, "model": ModelConfig, "pretrain": OptimConfig, "finetune": OptimConfig}
        sections["experiment"] = ExperimentConfig
        return Config(**{name: cls(**raw[name]) for name, cls in sections.items()})
    except (ValueError, KeyError, TypeError) as e:
        raise EvalError(f"{path} is not a valid run config ({type(e).__name__}: {e})") from None


def load_or_make_eval_set(data, run_dir: Path) -> tuple[dict, str]:
    """The run's evaluation set: generated from data.eval_seed once, then always read back from disk. Its hash
    is recorded when first seen; a file that later hashes differently is refused, so that results made on
    different evaluation sets are never mixed."""
    from graphgen.dataset import DatasetError, content_hash, generate, load, save

    path, pinned = run_dir / "eval_set.npz", run_dir / "eval_set.sha256"
    if not path.exists():
        lo, hi = data.eval_sizes()
        count = data.eval_per_size * (hi - lo + 1) * len(data.family_list())
        save(path, generate(data.eval_seed, data.family_list(), (lo, hi), count, data.vocab))
    try:
        arrays = load(path)
    except DatasetError as e:
        raise EvalError(str(e)) from None
    digest = content_hash(arrays)
    if not pinned.exists():
        write_atomic(pinned, lambda f: f.write(f"{digest}\n".encode()))
    elif (recorded := pinned.read_text().strip()) != digest:
        raise EvalError(
            f"{path} has hash {digest[:12]}…, but this run's evaluation set was {recorded[:12]}… ({pinned})"
        )
    return arrays, digest


# ---------------------------------------------------------------------------------------------------------
# Predictions in static-shape chunks.


def in_buckets(forward, arrays: dict, min_pad: int, batch_size: int = 256) -> np.ndarray:
    """Runs `forward(inputs, n_pad)` over every example in fixed-size chunks, one compiled shape per size
    bucket. Buckets are at least `min_pad` (the training size N): the looped encoder iterates n_pad times and
    must not run fewer iterations than it was trained with."""
    import jax.numpy as jnp

    from graphgen.dataset import bucket

    sizes = arrays["num_nodes"]
    largest = int(sizes.max())
    pad_of = np.array([max(min_pad, bucket(int(n), largest)) for n in sizes])
    outputs = None
    for n_pad in np.unique(pad_of).tolist():
        rows = np.flatnonzero(pad_of == n_pad)
        for chunk in np.array_split(rows, -(-len(rows) // batch_size)):
            padded = np.resize(chunk, batch_size)
            inputs = {k: jnp.asarray(arrays[k][padded]) for k in ("edges", "edge_mask", "s", "t", "path")}
            out = np.asarray(forward(inputs, n_pad))[: len(chunk)]
            if outputs is None:
                outputs = np.zeros((len(sizes), *out.shape[1:]), out.dtype)
            outputs[chunk] = out
    return outputs


def predictions(model, arrays: dict, min_pad: int, variant=None, swap: bool = False) -> np.ndarray:
    """Argmax d(s,t) (B,) when variant is None, else d(s,v) (B, V) for every vertex id v = 1..V. With
    swap=True the question is asked with s and t exchanged (d(t,s) and d(t,v))."""
    from flax import nnx

    graphdef, state = nnx.split(model)
    return in_buckets(
        lambda inputs, n_pad: _jit_forward()(graphdef, state, inputs, variant and variant.head, swap, n_pad),
        arrays,
        min_pad,
    )


@cache
def _jit_forward():
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from models.objectives import report_logits

    @partial(jax.jit, static_argnames=("graphdef", "head", "swap", "n_pad"))
    def forward(graphdef, state, inputs, head, swap, n_pad):
        """Module-level and keyed on the model's structure and head: every seed of every variant of a head
        shares one program."""
        model = nnx.merge(graphdef, state)
        s, t = (inputs["t"], inputs["s"]) if swap else (inputs["s"], inputs["t"])
        encoded = model.encode(inputs["edges"], inputs["edge_mask"], s, t, n_pad)
        if head is None:
            return model.d_st_head(*encoded)[:, 0].argmax(-1)
        vocab = model.encoder.ids.num_embeddings - 1
        ids = jnp.broadcast_to(jnp.arange(1, vocab + 1), (s.shape[0], vocab))
        return report_logits(model, head, inputs["edges"], inputs["edge_mask"], encoded, ids).argmax(-1)

    return forward


def trivial_report(d_hat: np.ndarray, s: np.ndarray, t: np.ndarray, vocab: int) -> np.ndarray:
    """The best label-free guess from the question alone, for every vertex id: 0 at the source, d̂ at the
    target, round(d̂/2) elsewhere. For the swapped question pass (t, s) as (s, t)."""
    ids = np.arange(1, vocab + 1)[None, :]
    guess = np.where(ids == t[:, None], d_hat[:, None], np.rint(d_hat[:, None] / 2))
    return np.where(ids == s[:, None], 0, guess).astype(int)


# ---------------------------------------------------------------------------------------------------------
# Metrics.


def path_labels(arrays: dict, vocab: int) -> np.ndarray:
    """(B, V) true d(s,v) of the path vertices (their position on the path), -1 off the path."""
    rows = np.arange(len(arrays["path"]))[:, None]
    position = np.broadcast_to(np.arange(arrays["path"].shape[1]), arrays["path"].shape)
    on_path = position < arrays["path_len"][:, None]
    label = np.full((len(rows), vocab + 1), -1)
    label[np.broadcast_to(rows, on_path.shape)[on_path], arrays["path"][on_path]] = position[on_path]
    return label[:, 1:]


def checks_passed(pred_s, pred_t, d_hat, arrays, vocab: int, chunk: int = 2048) -> dict[str, np.ndarray]:
    """Per consistency condition, (B, V) whether the answers pass it at each vertex (in chunks: the checks
    build (B, V, V) and (B, V, K) arrays)."""
    import jax.numpy as jnp

    from models.consistency import passes, question

    out = {name: np.zeros(pred_s.shape, bool) for name in CONDITIONS}
    for lo in range(0, len(pred_s), chunk):
        rows = slice(lo, lo + chunk)
        q = question(*(jnp.asarray(arrays[k][rows]) for k in ("edges", "edge_mask", "s", "t", "path")), vocab)
        for name in CONDITIONS:
            out[name][rows] = np.asarray(passes(name, q, pred_s[rows], pred_t[rows], d_hat[rows]))
    return out


def query_outcomes(pred_s, pred_t, d_hat, arrays, vocab: int) -> dict[str, np.ndarray]:
    """Per query (B, V) outcomes over the path vertices (`valid`); the checks see every vertex's answer."""
    label = path_labels(arrays, vocab)
    passed = checks_passed(pred_s, pred_t, d_hat, arrays, vocab)
    ok = np.logical_and.reduce(list(passed.values()))
    correct = pred_s == label
    return {
        **{f"pass_{name}": value for name, value in passed.items()},
        "valid": label >= 0,
        "label": label,
        "acc": correct,
        "mae": np.abs(pred_s - label),
        "consistent": ok,
        "incoherent": ~ok,
        "coherent_wrong": ok & ~correct,
    }


def breakdown(outcomes: dict, key: np.ndarray) -> dict[str, dict[str, float]]:
    """Mean of every metric over the valid queries, per value of `key` (B, P) (e.g. graph size, distance)."""
    valid = outcomes["valid"]
    key = np.broadcast_to(key, valid.shape)
    table = {}
    for value in np.unique(key[valid]):
        rows = valid & (key == value)
        table[str(value)] = {m: float(outcomes[m][rows].mean()) for m in METRICS}
    return table


def tables(outcomes: dict, arrays: dict) -> dict[str, dict]:
    """The breakdowns of DESIGN.md: by graph size and by true distance d(s,u), over every evaluated size."""
    by_size = breakdown(outcomes, arrays["num_nodes"][:, None])
    return {"by_size": by_size, "by_distance": breakdown(outcomes, outcomes["label"])}


_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def mean_ci(values: list[float]) -> tuple[float, float, float]:
    """Mean and Student-t 95% interval over seeds (the mean alone for one seed)."""
    x = np.asarray(values, float)
    mean = float(x.mean())
    if len(x) < 2:
        return mean, mean, mean
    half = _T975.get(len(x) - 1, 1.96) * float(x.std(ddof=1)) / math.sqrt(len(x))
    return mean, mean - half, mean + half


def aggregate(per_seed: list[dict]) -> dict:
    """key -> metric -> mean, plus metric_ci95 = [low, high], over the seeds' tables (by size or distance)."""
    table = {}
    for key in per_seed[0]:
        row = {}
        for m in METRICS:
            mean, low, high = mean_ci([seed[key][m] for seed in per_seed])
            row[m], row[f"{m}_ci95"] = mean, [low, high]
        table[key] = row
    return table


def capability_numbers(d_hat: np.ndarray, arrays: dict, n_max: int) -> dict:
    """What the pretrained model knows: d(s,t) accuracy by size (every evaluated size) and by distance (sizes
    <= N), and `capability_ok` = accuracy >= CAPABILITY_THRESHOLD on every size <= N."""
    sizes = arrays["num_nodes"]
    correct = d_hat == arrays["d_st"]
    in_range = sizes <= n_max
    d_st_by_size = {str(n): float(correct[sizes == n].mean()) for n in np.unique(sizes)}
    return {
        "d_st_acc_by_size": d_st_by_size,
        "d_st_acc_by_distance": {
            str(d): float(correct[in_range & (arrays["d_st"] == d)].mean()) for d in np.unique(arrays["d_st"][in_range])
        },
        "capability_ok": all(acc >= CAPABILITY_THRESHOLD for n, acc in d_st_by_size.items() if int(n) <= n_max),
        "threshold": CAPABILITY_THRESHOLD,
        "n_max": n_max,
    }


def pooled_accuracy(outcomes: dict, sizes: np.ndarray, n_report: int, n_max: int) -> float:
    """Accuracy over every path query of the sizes n+1..N pooled together (the input of `pgr_beyond_n`)."""
    beyond = outcomes["valid"] & ((sizes > n_report) & (sizes <= n_max))[:, None]
    return float(outcomes["acc"][beyond].mean())


def add_pgr(variants: dict, n_report: int) -> None:
    """PGR = (acc - acc_trivial) / (acc_oracle - acc_trivial) on sizes > n, from the seed means."""
    if "oracle" not in variants:
        return
    for table in variants.values():
        for size, row in table["by_size"].items():
            if int(size) > n_report:
                gap = variants["oracle"]["by_size"][size]["acc"] - variants["trivial"]["by_size"][size]["acc"]
                gained = row["acc"] - variants["trivial"]["by_size"][size]["acc"]
                row["pgr"] = gained / gap if abs(gap) > 1e-9 else None


def add_pooled_pgr(variants: dict, pooled_acc: dict[str, list[float]]) -> None:
    """`pgr_beyond_n`: PGR of the accuracy pooled over every query of sizes n+1..N, per seed against the
    oracle's and trivial baseline's mean, with mean and 95% interval over seeds. One number per variant
    for the plots of PGR against consistency strength."""
    if "oracle" not in pooled_acc:
        return
    floor, top = pooled_acc["trivial"][0], float(np.mean(pooled_acc["oracle"]))
    for name, accs in pooled_acc.items():
        if abs(top - floor) > 1e-9:
            mean, low, high = mean_ci([(acc - floor) / (top - floor) for acc in accs])
            variants[name]["pgr_beyond_n"] = {"mean": mean, "ci95": [low, high]}


# ---------------------------------------------------------------------------------------------------------
# The whole evaluation.


def evaluate_run(run_dir: Path, results_dir: Path, names: list[str] | None = None, overwrite: bool = False) -> dict:
    """Evaluates the variants `names` (default: the run config's experiment.variants), every seed, into
    results_dir. Refuses (EvalError) to replace the results of a different experiment there unless `overwrite`."""
    from flax import nnx

    from models.objectives import PRETRAINED, variant
    from train import RunError, finetune_seeds, load_phase, new_model, variant_model

    cfg = load_config(run_dir)
    names = names or cfg.experiment.variant_list()
    arrays, eval_hash = load_or_make_eval_set(cfg.data, run_dir)
    if not overwrite:
        try:
            refuse_to_replace(results_dir / "summary.json", dataclasses.asdict(cfg), eval_hash)
        except UsageError as e:
            raise EvalError(str(e)) from None
    sizes, n_max = arrays["num_nodes"], cfg.data.n_max
    try:
        pretrained = load_phase(new_model(cfg, cfg.pretrain.seed), run_dir, "pretrain", PRETRAINED)
    except RunError as e:
        raise EvalError(str(e)) from None

    pretrained_state = nnx.state(pretrained, PRETRAINED)
    d_hat = predictions(pretrained, arrays, n_max)
    d_hat_swapped = predictions(pretrained, arrays, n_max, swap=True)  # d(t,s), for the checks of the swap
    capability = capability_numbers(d_hat, arrays, n_max)
    vocab, sources, targets = cfg.data.vocab, arrays["s"], arrays["t"]

    def scored(pred_s, pred_t) -> tuple[dict, float]:
        """Tables of one reporter, and its accuracy pooled over the sizes n+1..N (for PGR)."""
        outcomes = query_outcomes(pred_s, pred_t, d_hat, arrays, vocab)
        return tables(outcomes, arrays), pooled_accuracy(outcomes, sizes, cfg.data.n_report, n_max)

    trivial = scored(
        trivial_report(d_hat, sources, targets, vocab), trivial_report(d_hat_swapped, targets, sources, vocab)
    )
    variants = {"trivial": {"seeds": 0, **trivial[0]}}
    pooled = {"trivial": [trivial[1]]}
    for name in names:
        reporter = variant(name)
        per_seed, pooled[name] = [], []
        for seed in finetune_seeds(cfg):
            model = variant_model(cfg, pretrained_state, seed)
            try:
                load_phase(model, run_dir, f"{name}-seed{seed}", reporter.trainable())
            except RunError as e:
                raise EvalError(str(e)) from None
            table, acc = scored(
                predictions(model, arrays, n_max, reporter), predictions(model, arrays, n_max, reporter, swap=True)
            )
            per_seed.append(table)
            pooled[name].append(acc)
        variants[name] = {"seeds": len(per_seed), **{k: aggregate([t[k] for t in per_seed]) for k in per_seed[0]}}
    add_pgr(variants, cfg.data.n_report)
    add_pooled_pgr(variants, pooled)
    if "probe" in variants:
        capability["probe_acc_by_size"] = {n: row["acc"] for n, row in variants["probe"]["by_size"].items()}

    summary = {
        "config": dataclasses.asdict(
            dataclasses.replace(cfg, experiment=dataclasses.replace(cfg.experiment, variants=",".join(names)))
        ),
        "eval_set_hash": eval_hash,
        "n_report": cfg.data.n_report,
        "capability": capability,
        "variants": variants,
        "checks": list(CONDITIONS),
        "provenance": provenance(),
    }
    results_dir.mkdir(parents=True, exist_ok=True)
    write_json(results_dir / "summary.json", summary)
    write_atomic(results_dir / "metrics.csv", lambda f: f.write(metrics_csv(summary).encode()))
    plot_all(summary, results_dir)
    return summary


def metrics_csv(summary: dict) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["variant", "by", "value", "metric", "mean", "ci95_low", "ci95_high", "seeds"])
    for name, table in summary["variants"].items():
        for by in ("size", "distance"):
            for value, row in table[f"by_{by}"].items():
                for m in METRICS:
                    low, high = row.get(f"{m}_ci95", [row[m], row[m]])
                    writer.writerow([name, by, value, m, f"{row[m]:.6g}", f"{low:.6g}", f"{high:.6g}", table["seeds"]])
                if row.get("pgr") is not None:
                    writer.writerow([name, by, value, "pgr", f"{row['pgr']:.6g}", "", "", table["seeds"]])
    for name in ("d_st_acc_by_size", "probe_acc_by_size"):
        for size, acc in summary["capability"].get(name, {}).items():
            writer.writerow(["capability", "size", size, name.removesuffix("_by_size"), f"{acc:.6g}", "", "", ""])
    return out.getvalue()


# ---------------------------------------------------------------------------------------------------------
# Plots.


def _limits(ax, summary: dict) -> None:
    cfg = summary["config"]["data"]
    ax.axvline(summary["n_report"] + 0.5, color="0.3", ls="--", lw=1)
    ax.axvline(cfg["n_max"] + 0.5, color="0.3", ls=":", lw=1)
    top = ax.get_ylim()[1]
    ax.text(summary["n_report"] + 0.6, top, "n: labels end", va="top", fontsize=8, color="0.3")
    ax.text(cfg["n_max"] + 0.6, top, "N: pretraining ends", va="top", fontsize=8, color="0.3")


def _color(summary: dict, name: str):
    """One colour per variant, the same in every plot (tab20 once there are more than 10 variants)."""
    import matplotlib.pyplot as plt

    index, count = list(summary["variants"]).index(name), len(summary["variants"])
    return f"C{index}" if count <= 10 else plt.get_cmap("tab20")(index % 20)


def _legend(ax, count: int) -> None:
    if count <= 7:
        ax.legend(fontsize=8, loc="lower left")
    else:  # a sweep: outside, so that it hides no line
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)


def _lines(ax, summary: dict, metric: str, names: list[str]) -> None:
    for name in names:
        table = summary["variants"][name]["by_size"]
        sizes = sorted(table, key=int)
        x = [int(n) for n in sizes]
        y = [table[n][metric] for n in sizes]
        color = _color(summary, name)
        line = ax.plot(x, y, marker="o", ms=3, label=name, color=color)[0]
        if f"{metric}_ci95" in table[sizes[0]]:
            low, high = zip(*(table[n][f"{metric}_ci95"] for n in sizes), strict=True)
            alpha = 0.2 if len(names) <= 7 else 0.05  # a sweep's many bands would hide each other
            ax.fill_between(x, low, high, color=line.get_color(), alpha=alpha, lw=0)


def plot_all(summary: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(summary["variants"])
    seeds = max(v["seeds"] for v in summary["variants"].values())
    plots = {
        "accuracy_vs_size.png": ("acc", "d(s,u) accuracy", names),
        "coherent_wrong_vs_size.png": ("coherent_wrong", "coherent but wrong (fraction of queries)", names),
    }
    size = (6.4, 4.2) if len(names) <= 7 else (9.6, 4.8)
    for filename, (metric, ylabel, shown) in plots.items():
        fig, ax = plt.subplots(figsize=size)
        _lines(ax, summary, metric, shown)
        ax.set(xlabel="graph size (vertices)", ylabel=ylabel, ylim=(-0.02, 1.05))
        ax.set_title(f"{ylabel} vs. size; bands: 95% interval over {seeds} seeds", fontsize=10)
        _limits(ax, summary)
        _legend(ax, len(shown))
        fig.tight_layout()
        write_atomic(out / filename, lambda f, fig=fig: fig.savefig(f, format="png", dpi=150))
        plt.close(fig)

    plot_strength(summary, out, plt)
    fig, ax = plt.subplots(figsize=size)
    capability = summary["capability"]
    for key, label, style in (
        ("d_st_acc_by_size", "knows: pretrained d(s,t)", "k-"),
        ("probe_acc_by_size", "knows: probe d(s,u)", "k--"),
    ):
        if key in capability:
            x = sorted(capability[key], key=int)
            ax.plot([int(n) for n in x], [capability[key][n] for n in x], style, label=label)
    reporters = [n for n in names if n not in ("probe", "trivial")]
    _lines(ax, summary, "acc", reporters)
    ax.set(xlabel="graph size (vertices)", ylabel="accuracy", ylim=(-0.02, 1.05))
    ax.set_title("what the model knows vs. what its report head says", fontsize=10)
    _limits(ax, summary)
    _legend(ax, len(reporters) + 2)
    fig.tight_layout()
    write_atomic(out / "capability_vs_report.png", lambda f: fig.savefig(f, format="png", dpi=150))
    plt.close(fig)


def plot_strength(summary: dict, out: Path, plt) -> None:
    """PGR on sizes n+1..N against consistency strength: the ladder of DESIGN.md on the frozen reporter,
    with every condition together and consistency-only beside it. Only for runs that hold the ladder."""
    from models.consistency import LADDER
    from models.objectives import ladder

    variants = summary["variants"]
    steps = [name for name in ladder("frozen") if "pgr_beyond_n" in variants.get(name, {})]
    if len(steps) < 2:
        return
    labels = ["none", *("+" + "\n+".join(rung) for rung in LADDER)][: len(steps)]
    extra = [name for name in ("frozen@all", "consistency-only") if "pgr_beyond_n" in variants.get(name, {})]
    fig, ax = plt.subplots(figsize=(7.2, 4.2))
    for i, name in enumerate(steps + extra):
        pgr = variants[name]["pgr_beyond_n"]
        low, high = pgr["ci95"]
        ax.errorbar(
            i,
            pgr["mean"],
            yerr=[[pgr["mean"] - low], [high - pgr["mean"]]],
            fmt="o",
            capsize=3,
            color="C0" if name in steps else "C3",
        )
    ax.plot(range(len(steps)), [variants[n]["pgr_beyond_n"]["mean"] for n in steps], color="C0", lw=1)
    ax.axhline(1.0, color="0.3", ls=":", lw=1)
    ax.axhline(0.0, color="0.3", ls=":", lw=1)
    ax.text(len(steps) + len(extra) - 0.5, 1.0, "oracle", va="bottom", ha="right", fontsize=8, color="0.3")
    ax.text(len(steps) + len(extra) - 0.5, 0.0, "trivial", va="bottom", ha="right", fontsize=8, color="0.3")
    ax.set_xticks(range(len(steps) + len(extra)), labels + [n.replace("frozen@", "") for n in extra], fontsize=7)
    n, big_n, seeds = summary["n_report"], summary["config"]["data"]["n_max"], variants[steps[0]]["seeds"]
    ax.set(
        xlabel="consistency conditions trained on sizes n+1..N (each rung adds to the last)",
        ylabel=f"PGR on sizes {n + 1}..{big_n}",
    )
    ax.set_title(
        f"performance gap recovered vs. consistency strength; bars: 95% interval over {seeds} seeds", fontsize=10
    )
    fig.tight_layout()
    write_atomic(out / "pgr_vs_strength.png", lambda f: fig.savefig(f, format="png", dpi=150))
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = Parser(prog="eval.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="run directory written by train.py")
    parser.add_argument("--results", type=Path, help="where to write results (default: results/RUN_NAME[-SWEEP])")
    parser.add_argument("--sweep", help="evaluate a sweep's grid (see train.py --sweep) instead of the run's variants")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace results there of a different config or evaluation set"
    )
    args = parser.parse_args(argv)
    from train import SWEEPS

    if args.sweep is not None and args.sweep not in SWEEPS:
        fail(parser.prog, f"unknown sweep '{args.sweep}' (choose from: {', '.join(SWEEPS)})")
    enable_compilation_cache()
    try:
        names = SWEEPS[args.sweep]() if args.sweep else None
        results = args.results or Path("results") / "-".join(filter(None, [args.run.name, args.sweep]))
        summary = evaluate_run(args.run, results, names, overwrite=args.overwrite)
    except EvalError as e:
        fail(parser.prog, str(e))
    print(json.dumps(summary["capability"]["d_st_acc_by_size"]), file=sys.stderr)


if __name__ == "__main__":
    main()
