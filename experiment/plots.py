"""The figures of a results directory, drawn from its summary.json alone."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

from common.files import write_atomic  # noqa: E402
from models.consistency import LADDER  # noqa: E402
from models.objectives import ladder  # noqa: E402


def _limits(ax, summary: dict) -> None:
    cfg = summary["config"]["data"]
    ax.axvline(summary["n_report"] + 0.5, color="0.3", ls="--", lw=1)
    ax.axvline(cfg["n_max"] + 0.5, color="0.3", ls=":", lw=1)
    top = ax.get_ylim()[1]
    ax.text(summary["n_report"] + 0.6, top, "n: labels end", va="top", fontsize=8, color="0.3")
    ax.text(cfg["n_max"] + 0.6, top, "N: pretraining ends", va="top", fontsize=8, color="0.3")


def _color(summary: dict, name: str):
    """One colour per variant, the same in every plot (tab20 once there are more than 10 variants)."""
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
    """Every figure of the summary into `out`: accuracy, coherent-but-wrong and capability vs. report by size,
    and PGR vs. consistency strength where the summary holds the ladder."""
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

    plot_strength(summary, out)
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


def plot_strength(summary: dict, out: Path) -> None:
    """PGR on sizes n+1..N against consistency strength: the ladder of docs/design.md on the frozen reporter,
    with every condition together and consistency-only beside it. Only for runs that hold the ladder."""
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
