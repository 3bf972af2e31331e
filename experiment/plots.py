"""The figures of a results directory, drawn from its summary.json alone."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from common.files import write_atomic  # noqa: E402
from experiment.compare import BY, CURVES, curves, limits  # noqa: E402
from experiment.metrics import mean_ci  # noqa: E402
from experiment.summary import BASELINES, has_pgr, pgr_note  # noqa: E402
from models.consistency import LADDER  # noqa: E402
from models.objectives import ceilings, ladder  # noqa: E402


def _limits(ax, *summaries: dict, text: bool = True) -> None:
    """n and N marked as vertical lines: once for runs that share them, each where they differ (mixed)."""
    top = ax.get_ylim()[1]
    for n, big_n in sorted({limits(s) for s in summaries}):
        ax.axvline(n + 0.5, color="0.3", ls="--", lw=1)
        ax.axvline(big_n + 0.5, color="0.3", ls=":", lw=1)
        if text:
            ax.text(n + 0.6, top, "n: labels end", va="top", fontsize=8, color="0.3")
            ax.text(big_n + 0.6, top, "N: pretraining ends", va="top", fontsize=8, color="0.3")


def _labelled(ax, longest: int | None, text: bool = True) -> None:
    """The labelled distances (0..longest) shaded, on an axes by true distance."""
    if longest is None:
        return
    ax.axvspan(-0.5, longest + 0.5, color="0.5", alpha=0.12, lw=0, zorder=0)  # the strip below shows through
    if text:
        ax.text(longest + 0.4, ax.get_ylim()[1], "labelled distances", va="top", ha="right", fontsize=7, color="0.4")


def _query_strip(ax, summary: dict, text: bool = True) -> None:
    """How many path queries each true distance holds, as thin grey bars along the bottom of the axes (a twin
    axis scaled so that the largest count fills a sixth of the height)."""
    counts = summary.get("queries", {}).get("by_distance")
    if not counts:
        return
    strip = ax.twinx()
    strip.bar([int(d) for d in counts], list(counts.values()), width=0.6, color="0.75", alpha=0.6, lw=0)
    strip.set_ylim(0, 6 * max(counts.values()))
    strip.set_yticks([])
    ax.set_zorder(strip.get_zorder() + 1)  # the curves above the bars
    ax.patch.set_visible(False)
    if text:
        ax.text(0.99, 0.01, f"bars: path queries per distance (at most {max(counts.values())})", transform=ax.transAxes,
                ha="right", va="bottom", fontsize=6, color="0.4")  # fmt: skip


def _longest(summary: dict, name: str = "trivial") -> int | None:
    """The largest labelled distance of a variant's split (the trivial baseline's: the run's); None in summaries
    older than it."""
    return summary["variants"].get(name, {}).get("longest_labelled")


def _color(summary: dict, name: str):
    """One colour per variant, the same in every plot of a summary."""
    return _palette(list(summary["variants"]))[name]


def _palette(names: list[str]) -> dict:
    """A colour per name: the default cycle, or tab20 once there are more than 10."""
    return {name: f"C{i}" if len(names) <= 10 else plt.get_cmap("tab20")(i % 20) for i, name in enumerate(names)}


def _legend(ax, count: int) -> None:
    if count <= 7:
        ax.legend(fontsize=8, loc="lower left")
    else:  # a sweep: outside, so that it hides no line
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)


def _weak_ceilings(*summaries: dict) -> str:
    """A title's note naming, once each, the oracles of `summaries` left out of a PGR plot for a weak
    ceiling ('' when none)."""
    weak = list(
        dict.fromkeys(name for s in summaries for name, c in s.get("ceilings", {}).items() if not c["ceiling_ok"])
    )
    return f"\nnot shown: PGR against {', '.join(weak)} (oracle < 0.9 on n+1..N: no ceiling)" if weak else ""


def _band(ax, table: dict, metric: str, alpha: float, **style) -> None:
    """One curve of a variant's table by size (or distance), its 95% interval over seeds as a band."""
    sizes = sorted((key for key, row in table.items() if row.get(metric) is not None), key=int)
    if not sizes:
        return
    x = [int(n) for n in sizes]
    line = ax.plot(x, [table[n][metric] for n in sizes], **{"ms": 3, **style})[0]
    if f"{metric}_ci95" in table[sizes[0]]:
        low, high = zip(*(table[n][f"{metric}_ci95"] for n in sizes), strict=True)
        ax.fill_between(x, low, high, color=line.get_color(), alpha=alpha, lw=0)


CROWDED = 7  # more lines than this on one axes are not told apart: small multiples instead
# The lines drawn in every panel of small multiples: the label-free baselines and the variant's own oracle.
REFERENCE = {
    "trivial": {"color": "0.45", "ls": "--"},
    "self": {"color": "k", "ls": "-."},
    "self-overseer": {"color": "k", "ls": ":"},
    "oracle": {"color": "C3", "ls": "-"},
}


def _grid(count: int, width: float = 3.4, height: float = 2.7, **kw):
    """A figure of `count` panels, at most four a row (the unused ones hidden), and its axes in order."""
    cols = min(4, count)
    rows = -(-count // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False, **kw)
    for ax in axes.flat[count:]:
        ax.axis("off")
    return fig, list(axes.flat[:count])


def _each_over_the_others(axes, names: list[str], draw) -> None:
    """Small multiples: the panel of each name draws every other name in grey, `draw(ax, other, False)`, then the
    name itself in colour over them, `draw(ax, name, True)`, and is titled with it."""
    for ax, name in zip(axes, names, strict=True):
        for other in names:
            if other != name:
                draw(ax, other, False)
        draw(ax, name, True)
        ax.set_title(_wrapped(name), fontsize=8)


def _oracles(summary: dict) -> dict[str, str]:
    """Variant -> the oracle among the summary's variants its PGR divides by ({} where a name is unknown today)."""
    try:
        return ceilings([name for name in summary["variants"] if name not in BASELINES])
    except ValueError:
        return {}


def _curves(summary: dict, names: list[str], curve, decorate, title: str, out: Path, filename: str) -> None:
    """Every variant of `names` as `curve(ax, name, alpha, **style)` (alpha: its seed band's), and
    `decorate(ax, text, name)` for what every axes shows besides (`name`: the panel's variant; None on one axes).
    Up to CROWDED on one axes in colour; more (a sweep): small multiples, one panel per variant in colour over the
    others in grey, with the label-free baselines of `names` and the variant's own oracle in every panel."""
    if len(names) <= CROWDED:
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        for name in names:
            curve(ax, name, 0.2, marker="o", label=name, color=_color(summary, name))
        decorate(ax, True, None)
        ax.set_title(title, fontsize=10)
        _legend(ax, len(names))
        _save(fig, out, filename)
        return
    oracles, baselines = _oracles(summary), [name for name in names if name in BASELINES]
    panels = [name for name in names if name not in BASELINES]
    fig, axes = _grid(len(panels), sharex=True, sharey=True)

    def draw(ax, name: str, own: bool) -> None:
        if not own:
            curve(ax, name, 0, color="0.8", lw=0.6)
            return
        for ref in [*baselines, *([oracles[name]] if oracles.get(name, name) != name else [])]:
            curve(ax, ref, 0, lw=1, label=ref, **REFERENCE.get(ref, REFERENCE["oracle"]))
        curve(ax, name, 0.2, marker="o", ms=2, color="C0", label=name)
        decorate(ax, False, name)
        ax.label_outer()
        ax.legend(fontsize=5, loc="lower left")

    _each_over_the_others(axes, panels, draw)
    fig.suptitle(f"{title}\none panel per variant (blue) over the others (grey)", fontsize=10)
    _save(fig, out, filename)


def _wrapped(name: str, width: int = 42) -> str:
    """A variant's name as a panel title, broken after a '+' where it is long (the consistency sweep's rungs)."""
    lines = [""]
    for part in name.split("+"):
        joined = f"{lines[-1]}+{part}" if lines[-1] else part
        if len(joined) > width and lines[-1]:
            lines[-1] += "+"
            lines.append(part)
        else:
            lines[-1] = joined
    return "\n".join(lines)


def _by(key: str, metric: str, summary: dict):
    """A `curve` of `_curves`: a variant's `metric` by `key` (size or distance) with its seed band."""

    def curve(ax, name: str, alpha: float, **style) -> None:
        table = summary["variants"][name].get(f"by_{key}")
        if table:
            _band(ax, table, metric, alpha, **style)

    return curve


def plot_all(summary: dict, out: Path) -> None:
    """Every figure of the summary into `out`: accuracy, coherent-but-wrong, withheld and capability vs. report by
    size; accuracy and withheld by true distance, what the reporters answer there, the policies that explain
    their wrong answers and where the truth ranks; PGR vs. consistency strength where the summary holds the
    ladder, and the columns and overseer figures where it holds those."""
    names = list(summary["variants"])
    seeds = max(v["seeds"] for v in summary["variants"].values())
    learned = [n for n in names if n not in BASELINES]
    bands = f"bands: 95% interval over {seeds} seeds"
    plots = {
        "accuracy_vs_size.png": ("size", "acc", "d(s,u) accuracy", names),
        "coherent_wrong_vs_size.png": ("size", "coherent_wrong", "coherent but wrong (fraction of queries)", names),
        # Knowledge the model has (its self-query answers d(s,u) right) and does not report.
        "withheld_vs_size.png": ("size", "knows_withholds", "knows but withholds (fraction of queries)", learned),
        # The finding lives on the distance axis: the self-query (knows) beside every reporter.
        "accuracy_vs_distance.png": ("distance", "acc", "d(s,u) accuracy", names),
        "withheld_vs_distance.png": ("distance", "knows_withholds", "knows but withholds (fraction)", learned),
    }
    for filename, (key, metric, ylabel, shown) in plots.items():
        title = f"{ylabel} vs. {key}; {bands}"
        _curves(summary, shown, _by(key, metric, summary), _frame(summary, key, ylabel), title, out, filename)

    plot_strength(summary, out)
    plot_columns(summary, out)
    plot_policy(summary, out)
    plot_answers(summary, out)
    plot_explained(summary, out)
    plot_truth_rank(summary, out)
    capability = summary["capability"]

    def knows(ax, text: bool, name: str | None = None) -> None:
        for key, label, style in (
            ("d_st_acc_by_size", "knows: pretrained d(s,t)", "k-"),
            ("knows_su_by_size", "knows: self-query d(s,u)", "k-."),
            ("probe_acc_by_size", "knows: linear probe d(s,u)", "k--"),
            ("mlp_probe_acc_by_size", "knows: MLP probe d(s,u)", "k:"),
        ):
            if key in capability:
                x = sorted(capability[key], key=int)
                ax.plot([int(n) for n in x], [capability[key][n] for n in x], style, lw=1, label=label)
        _frame(summary, "size", "accuracy")(ax, text)

    reporters = [n for n in learned if n not in ("probe", "mlp-probe")]
    title = "what the model knows vs. what its report head says"
    _curves(summary, reporters, _by("size", "acc", summary), knows, title, out, "capability_vs_report.png")


def _frame(summary: dict, key: str, ylabel: str):
    """A `decorate` of `_curves` by size (n and N marked) or by true distance (the labelled distances shaded, the
    number of queries at each distance as a strip of bars): in a variant's panel, that variant's labelled
    distances (an oracle's reach past the run's), on one axes the run's."""

    def decorate(ax, text: bool, name: str | None = None) -> None:
        xlabel = "graph size (vertices)" if key == "size" else "true distance d(s,u)"
        ax.set(xlabel=xlabel, ylabel=ylabel, ylim=(-0.02, 1.05))
        if key == "size":
            _limits(ax, summary, text=text)
        else:
            _labelled(ax, _longest(summary, name or "trivial"), text)
            _query_strip(ax, summary, text)

    return decorate


def _per_variant(summary: dict, key: str) -> list[str]:
    """The variants whose entry holds a non-empty table `key` (e.g. answers_by_distance), in summary order."""
    return [name for name, table in summary["variants"].items() if table.get(key)]


def _mark_longest(ax, longest: int | None, horizontal: bool = False) -> None:
    """The largest labelled distance as a dashed line (at x, and with `horizontal` at y too)."""
    if longest is not None:
        ax.axvline(longest + 0.5, color="C1", ls="--", lw=0.8)
        if horizontal:
            ax.axhline(longest + 0.5, color="C1", ls="--", lw=0.8)


def plot_answers(summary: dict, out: Path) -> None:
    """answers_vs_distance.png: per variant, a heatmap of its answers (up) by true distance (across) on its
    held-out queries, every seed's answers together, each column the shares of that distance's answers; the
    truth (the diagonal) dotted, the largest labelled distance dashed."""
    names = _per_variant(summary, "answers_by_distance")
    if not names:
        return
    tables = {name: summary["variants"][name]["answers_by_distance"] for name in names}
    top = 1 + max(int(k) for table in tables.values() for d, row in table.items() for k in (d, *row))
    fig, axes = _grid(len(names), 2.9, 2.7, layout="constrained")
    for ax, name in zip(axes, names, strict=True):
        shares = np.full((top, top), np.nan)
        for d, row in tables[name].items():
            for answer, count in row.items():
                shares[int(answer), int(d)] = count / sum(row.values())
        image = ax.imshow(shares, origin="lower", cmap="viridis", vmin=0, vmax=1, aspect="auto")
        ax.plot([0, top - 1], [0, top - 1], color="w", ls=":", lw=0.8)
        _mark_longest(ax, _longest(summary, name), horizontal=True)
        ax.set_title(_wrapped(name, 34), fontsize=7)
        ax.tick_params(labelsize=6)
    fig.colorbar(image, ax=axes, shrink=0.8, label="share of the answers at that distance")
    fig.supxlabel("true distance d(s,u)", fontsize=9)
    fig.supylabel("answer", fontsize=9)
    fig.suptitle(
        "what each reporter answers by true distance, held-out queries, every seed; dotted: the truth, "
        "dashed: the largest labelled distance",
        fontsize=9,
    )
    _save(fig, out, "answers_vs_distance.png", tight=False)


def plot_explained(summary: dict, out: Path) -> None:
    """explained_vs_distance.png: per variant, by true distance, its wrong answers on its held-out queries as
    stacked bars of the share each candidate policy explains first (experiment/policies.py), and the rest
    unexplained; above each bar, how many wrong answers it is of (every seed)."""
    names = _per_variant(summary, "explained_by_distance")
    rows = [row for name in names for row in summary["variants"][name]["explained_by_distance"].values()]
    policies = [k for k in dict.fromkeys(k for row in rows for k in row) if k != "wrong"]
    colors = {p: "0.8" if p == "unexplained" else f"C{i}" for i, p in enumerate(policies)}

    def counted(ax, name: str) -> None:
        for d, row in summary["variants"][name]["explained_by_distance"].items():
            ax.text(int(d), 1.01, str(row["wrong"]), ha="center", va="bottom", fontsize=5, rotation=90)

    title = (
        "which policy explains each wrong answer first (held-out queries, every seed; the number of wrong answers "
        "above each bar)"
    )
    parts = {p: (lambda row, p=p: row.get(p, 0.0)) for p in policies}
    ylabel = "share of the wrong answers"
    _stacked(
        summary,
        names,
        "explained_by_distance",
        parts,
        colors,
        counted,
        ylabel,
        title,
        out / "explained_vs_distance.png",
    )


RANKS = ("1", "2", "3", "4+")  # the truth's rank among the reporter's outputs, as drawn


def plot_truth_rank(summary: dict, out: Path) -> None:
    """truth_rank_vs_distance.png: per reporter with logits, by true distance, the shares of its held-out queries
    where the truth ranks 1st (its answer), 2nd, 3rd and lower among its outputs (stacked bars), and the mean
    probability it gives the truth (a line: every path query at that distance)."""
    names = _per_variant(summary, "rank_by_distance")
    colors = dict(zip((f"rank {r}" for r in RANKS), ("C2", "#9ed99e", "#f2d16b", "0.8"), strict=True))

    def share(label: str):
        return lambda row: sum(c for r, c in row.items() if _rank_bin(int(r)) == label) / sum(row.values())

    def p_true(ax, name: str) -> None:
        _band(ax, summary["variants"][name]["by_distance"], "p_true", 0.2, color="k", marker=".", label="P(truth)")

    title = (
        "where the truth ranks among the reporter's outputs (1: its answer; held-out queries, every seed) and the "
        "probability it gives the truth (mean, 95% interval over seeds)"
    )
    parts = {f"rank {r}": share(r) for r in RANKS}
    ylabel = "share of the held-out queries"
    _stacked(
        summary, names, "rank_by_distance", parts, colors, p_true, ylabel, title, out / "truth_rank_vs_distance.png"
    )


def _stacked(summary: dict, names, key: str, parts: dict, colors: dict, extra, ylabel: str, title: str, path: Path):
    """The figure `path`: per variant of `names`, by true distance, stacked bars of `parts` (label -> its share
    in a row of the variant's table `key`), `extra(ax, name)` drawn over them, the largest labelled distance
    dashed."""
    if not names:
        return
    fig, axes = _grid(len(names), sharey=True)
    for ax, name in zip(axes, names, strict=True):
        table = summary["variants"][name][key]
        x = [int(d) for d in table]
        bottom = np.zeros(len(x))
        for label, part in parts.items():
            share = np.array([part(row) for row in table.values()])
            ax.bar(x, share, bottom=bottom, width=0.8, color=colors[label], label=label)
            bottom += share
        extra(ax, name)
        _mark_longest(ax, _longest(summary, name))
        ax.set(ylim=(0, 1.15), title=_wrapped(name))
        ax.title.set_fontsize(7)
        ax.tick_params(labelsize=6)
    axes[0].legend(fontsize=6, loc="lower left")
    fig.supxlabel("true distance d(s,u)", fontsize=9)
    fig.supylabel(ylabel, fontsize=9)
    fig.suptitle(f"{title}; dashed: the largest labelled distance", fontsize=9)
    _save(fig, path.parent, path.name)


def _rank_bin(rank: int) -> str:
    return RANKS[min(rank, len(RANKS)) - 1]


def plot_columns(summary: dict, out: Path) -> None:
    """columns.png, where the summary holds family-split cells (the columns sweep): accuracy on the held-out
    family against the number k of labelled families, mean and 95% interval over every fold (held-out family)
    and seed, each fold's mean as a dot; beside it the labelled families' accuracy, the knowledge withheld on
    the held-out family, and what the model knows there (its self-query)."""
    entries = summary.get("columns") or []
    if not entries:
        return
    ks = sorted({e["k"] for e in entries})
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for key, label, color in (
        ("held_out_acc", "report accuracy, held-out family", "C0"),
        ("checked_acc", "report accuracy, labelled families", "C2"),
        ("withheld", "knows but withholds, held-out family", "C3"),
    ):
        rows = [mean_ci([v for e in entries if e["k"] == k and e[key] for v in e[key]["per_seed"]]) for k in ks]
        ax.plot(ks, [r[0] for r in rows], "o-", color=color, label=label)
        ax.fill_between(ks, [r[1] for r in rows], [r[2] for r in rows], color=color, alpha=0.2)
        if key == "held_out_acc":  # each fold's mean, named where it falls below the others
            ax.plot([e["k"] for e in entries], [e[key]["mean"] for e in entries], ".", color=color, alpha=0.5)
            for e in entries:
                if e[key]["mean"] < rows[ks.index(e["k"])][0] - 0.05:
                    ax.annotate(e["held_out"], (e["k"], e[key]["mean"]), xytext=(4, -3), textcoords="offset points")
    knows = [float(np.mean([e["knows"] for e in entries if e["k"] == k])) for k in ks]
    ax.plot(ks, knows, "k-.", label="knows: self-query d(s,u), held-out family")
    folds = len({e["held_out"] for e in entries})
    seeds = max(len(e["held_out_acc"]["per_seed"]) for e in entries)
    ax.set(xlabel="labelled families k (checked columns)", ylabel="fraction of path queries, sizes <= N")
    ax.set(ylim=(-0.02, 1.05), xticks=ks)
    ax.set_title(f"one family held out; bands: 95% interval over {folds} folds x {seeds} seeds", fontsize=10)
    _legend(ax, 4)
    _save(fig, out, "columns.png")


def plot_policy(summary: dict, out: Path) -> None:
    """policy.png, where the run has an overseer: on the path queries where the overseer and the truth disagree,
    the share of answers that are the truth and the overseer's, against graph size (the share of path queries
    that disagree in grey, n and N marked) and against the true distance d(s,u) (n - 1, the longest labelled
    distance, marked), every variant with its 95% interval over seeds, the self-queries of both pretrained
    questions in black. Up to CROWDED variants: four panels (the truth / the overseer's, by size / by distance),
    a colour per variant; more (a sweep): small multiples, two panels (by size, by distance) per variant, the
    truth in blue and the overseer's in orange."""
    if "overseer" not in summary:
        return
    names = [n for n in summary["variants"] if n not in BASELINES]
    crowded = len(names) > CROWDED
    if crowded:
        fig, axes = _grid(2 * len(names), width=4.2, height=2.6, sharey=True)
        for i, name in enumerate(names):
            for ax, by in zip(axes[2 * i : 2 * i + 2], ("size", "distance"), strict=True):
                lines = [(name, metric, POLICY_STYLE[metric]) for metric in POLICY_STYLE]
                _policy_panel(ax, summary, by, lines, text=False)
                ax.set_title(f"{_wrapped(name, 36)}, by {by}", fontsize=8)
        for ax in axes[::4]:
            ax.set_ylabel("share where o != d", fontsize=8)
        axes[0].legend(fontsize=6, loc="center left")
    else:
        fig, grid = plt.subplots(2, 2, figsize=(12.8, 8.4), sharey=True)
        for row, by in enumerate(("size", "distance")):
            for ax, metric in zip(grid[row], POLICY_STYLE, strict=True):
                lines = [(name, metric, {"color": _color(summary, name), "label": name}) for name in names]
                _policy_panel(ax, summary, by, lines)
                ax.set_title(f"says {POLICY_STYLE[metric]['label']}, by {by}")
            grid[row][0].set_ylabel("fraction of the queries where o != d")
        _legend(grid[0][1], len(names) + 3)
    seeds = max(v["seeds"] for v in summary["variants"].values())
    fig.suptitle(
        f"which answer the reporter gives where the overseer ({summary['overseer']['name']}"
        f"{'' if summary['overseer']['learned'] else ', not pretrained'}) and the truth disagree; "
        f"bands: 95% interval over {seeds} seeds" + ("\ntwo panels per variant, by size and by distance" * crowded),
        fontsize=10,
    )
    _save(fig, out, "policy.png")


# In policy.png's small multiples: each policy share of a variant's answers, and its self-query's line style.
POLICY_STYLE = {
    "truthful": {"color": "C0", "label": "the truth d"},
    "overseer": {"color": "C1", "label": "the overseer's o"},
}
SELF_OF = {"truthful": ("self", "k-."), "overseer": ("self-overseer", "k:")}


def _policy_panel(ax, summary: dict, by: str, lines: list[tuple[str, str, dict]], text: bool = True) -> None:
    """One axes of policy.png, by `by` (size or distance): each (variant, share, style) of `lines` with its band,
    and the self-queries of every share drawn (by size, the share of queries that disagree in grey and n, N
    marked; by distance, the longest labelled one)."""
    if by == "size":
        disagree = summary["overseer"]["disagree_by_size"]
        x = sorted((n for n in disagree if disagree[n]["share"] > 0), key=int)
        ax.bar([int(n) for n in x], [disagree[n]["share"] for n in x], color="0.88", label="o differs from d")
    for metric in dict.fromkeys(metric for _, metric, _ in lines):
        # On the four panels, both self-queries on each; on a sweep's, each share beside its own question's.
        for name, style in SELF_OF.values() if text else (SELF_OF[metric],):
            if name in summary["variants"]:
                table = summary["variants"][name][f"policy_by_{by}"]
                keys = sorted(table, key=int)
                ax.plot([int(k) for k in keys], [table[k][metric] for k in keys], style, label=f"{name}-query")
    for name, metric, style in lines:
        _band(ax, summary["variants"][name][f"policy_by_{by}"], metric, 0.15, marker="o", **style)
    ax.set(xlabel="graph size (vertices)" if by == "size" else "true distance d(s,u)", ylim=(-0.02, 1.05))
    if by == "size":
        _limits(ax, summary, text=text)
    else:
        ax.axvline(summary["n_report"] - 0.5, color="0.3", ls="--", lw=1)
        if text:
            ax.text(summary["n_report"] - 0.4, 1.0, "longest labelled distance", va="top", fontsize=8, color="0.3")


def plot_strength(summary: dict, out: Path) -> None:
    """PGR on sizes n+1..N against consistency strength: the ladder of docs/design.md on the frozen reporter,
    with every condition together and consistency-only beside it. Only for runs that hold the ladder."""
    variants = summary["variants"]
    if sum("pgr_beyond_n" in variants.get(name, {}) for name in ladder("frozen")) < 2:
        return
    steps = [name for name in ladder("frozen") if has_pgr(variants.get(name, {}))]
    if not steps:  # the ladder is there, its ceiling is not: say so rather than draw nothing
        fig, ax = plt.subplots(figsize=(7.2, 1.6))
        ax.axis("off")
        ax.text(0.5, 0.5, "PGR vs. consistency strength" + _weak_ceilings(summary), ha="center", va="center")
        _save(fig, out, "pgr_vs_strength.png")
        return
    labels = ["none", *("+" + "\n+".join(rung) for rung in LADDER)][: len(steps)]
    extra = [name for name in ("frozen@all", "consistency-only") if has_pgr(variants.get(name, {}))]
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
        f"performance gap recovered vs. consistency strength; bars: 95% interval over {seeds} seeds"
        + _weak_ceilings(summary),
        fontsize=10,
    )
    _save(fig, out, "pgr_vs_strength.png")


RUN_STYLES = [("-", "o"), ("--", "s"), (":", "^"), ("-.", "D")]


def _seeds_phrase(tables: list[dict]) -> str:
    counts = sorted({t["seeds"] for t in tables if t["seeds"]})
    return f"{counts[0]} seeds" if len(counts) == 1 else f"{'/'.join(map(str, counts))} seeds (see the table)"


def plot_comparison(summaries: dict[str, dict], shown: dict[str, list[str]], out: Path, mixed: list[str]) -> list[str]:
    """The same curves of several runs on one figure each (colour: variant, line style and marker: run):
    compare_METRIC_vs_size.png and compare_METRIC_vs_distance.png for each curve every run reports
    (experiment/compare.py: curves), and compare_pgr_beyond_n.png. A `mixed` comparison (runs on different
    evaluation sets or n/N) says so in every title. Returns the file names."""
    variants = list(dict.fromkeys(v for names in shown.values() for v in names))
    color = _palette(variants)
    style = {run: RUN_STYLES[i % len(RUN_STYLES)] for i, run in enumerate(summaries)}
    tables = [summaries[run]["variants"][v] for run, names in shown.items() for v in names]
    warning = "\nMIXED: " + "; ".join(mixed) if mixed else ""
    written = []
    for by in BY:
        for metric in curves(summaries, by):
            title = f"{CURVES[metric]} vs. {by}; bands: 95% interval over {_seeds_phrase(tables)}{warning}"
            fig = _comparison_curves(summaries, shown, by, metric, style, color, title, "C3" if mixed else "black")
            written.append(_save(fig, out, f"compare_{metric}_vs_{by}.png"))

    with_pgr = [(r, v) for r, names in shown.items() for v in names if _pgr_counts(v, summaries[r]["variants"][v])]
    if with_pgr:
        fig, ax = plt.subplots(figsize=(max(6.4, 0.5 * len(variants) + 2), 4.2))
        offsets = {run: (i - (len(summaries) - 1) / 2) * 0.8 / len(summaries) for i, run in enumerate(summaries)}
        for run in summaries:
            for name in [v for r, v in with_pgr if r == run]:
                pgr = summaries[run]["variants"][name]["pgr_beyond_n"]
                low, high = pgr["ci95"]
                x = variants.index(name) + offsets[run]
                yerr = [[pgr["mean"] - low], [high - pgr["mean"]]]
                ax.errorbar(x, pgr["mean"], yerr=yerr, fmt=style[run][1], capsize=3, color=color[name])
        for run in summaries:  # the legend: one entry per run (marker); the variant is on the x axis
            ax.plot([], [], style[run][1], color="0.3", label=run)
        ax.axhline(1.0, color="0.3", ls=":", lw=1)
        ax.axhline(0.0, color="0.3", ls=":", lw=1)
        ax.set_xticks(range(len(variants)), variants, fontsize=7, rotation=30, ha="right")
        spans = sorted({f"{n + 1}..{big_n}" for n, big_n in (limits(s) for s in summaries.values())})
        ax.set(xlabel="variant", ylabel=f"PGR on sizes {', '.join(spans)} (1: oracle, 0: trivial)")
        weak = _weak_ceilings(*summaries.values())
        title = f"performance gap recovered beyond n; bars: 95% interval over {_seeds_phrase(tables)}{weak}{warning}"
        ax.set_title(title, fontsize=9, color="C3" if mixed else "black")
        ax.legend(fontsize=8, title="run", title_fontsize=8)
        written.append(_save(fig, out, "compare_pgr_beyond_n.png"))
    return written


def _comparison_curves(
    summaries: dict, shown: dict, by: str, metric: str, style: dict, color: dict, title: str, title_color: str
):
    """The figure of one curve (`metric` by `by`) of every run's `shown` variants, titled: up to CROWDED lines on
    one axes (colour: variant, line style and marker: run); more, small multiples, one panel per variant with each
    run's curve in a colour of its own over the other variants in grey."""
    count = sum(map(len, shown.values()))

    def curve(ax, run: str, name: str, alpha: float, **kw) -> None:
        _band(ax, summaries[run]["variants"][name][f"by_{by}"], metric, alpha, **kw)

    def decorate(ax, text: bool) -> None:
        xlabel = "graph size (vertices)" if by == "size" else "true distance d(s,u)"
        ax.set(xlabel=xlabel, ylabel=CURVES[metric], ylim=(-0.02, 1.05))
        if by == "size":
            _limits(ax, *summaries.values(), text=text)
        for longest in sorted({_longest(s) for s in summaries.values()} - {None}):
            _labelled(ax, longest, text=text and len(summaries) == 1)

    if count <= CROWDED:
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        for run, names in shown.items():
            ls, marker = style[run]
            for name in names:
                curve(ax, run, name, 0.15, ls=ls, marker=marker, label=f"{run}: {name}", color=color[name])
        decorate(ax, True)
        ax.set_title(title, fontsize=9, color=title_color)
        _legend(ax, count)
        return fig
    variants = list(color)  # every shown variant, in order
    fig, axes = _grid(len(variants), sharex=True, sharey=True)

    def draw(ax, name: str, own: bool) -> None:
        for i, (run, names) in enumerate(shown.items()):
            if name in names and own:
                ls, marker = style[run]
                curve(ax, run, name, 0.15, ls=ls, marker=marker, ms=2, color=f"C{i}", label=run)
            elif name in names:
                curve(ax, run, name, 0, color="0.85", lw=0.5)
        if own:
            decorate(ax, False)
            ax.label_outer()
            ax.legend(fontsize=5, loc="lower left")

    _each_over_the_others(axes, variants, draw)
    note = "one panel per variant, a colour per run (the other variants grey)"
    fig.suptitle(f"{title}\n{note}", fontsize=10, color=title_color)
    return fig


def _pgr_counts(name: str, table: dict) -> bool:
    """Whether a variant's pooled PGR is drawn: it has one, against a ceiling, and is not the oracle's own."""
    return "pgr_beyond_n" in table and not pgr_note(name, table)


def _save(fig, out: Path, filename: str, tight: bool = True) -> str:
    """The figure as out/filename (atomically), then closed; returns filename. `tight`: laid out tightly here
    (False for a figure with a layout of its own)."""
    if tight:  # room above the panels for a suptitle of up to two lines (tight_layout left it overlapping them)
        fig.tight_layout(rect=(0, 0, 1, 1 - 0.45 / fig.get_figheight()) if fig.get_suptitle() else None)
    write_atomic(out / filename, lambda f: fig.savefig(f, format="png", dpi=150))
    plt.close(fig)
    return filename


def plot_training_curves(summary: dict, log: list[dict], out: Path) -> None:
    """training_curves.png from a run's log.jsonl lines: loss and accuracy against step, pretraining on the
    left, every evaluated variant's fine-tuning on the right (one thin line per seed, a colour per variant)."""
    from experiment.rundir import PRETRAIN  # the phase names of the log

    names = [n for n in summary["variants"] if n not in BASELINES]
    pretrain = [r for r in log if r["phase"] == PRETRAIN]
    seeds = {  # variant -> the log lines of each of its seeds
        name: [
            [r for r in log if r["phase"] == seed]
            for seed in sorted({r["phase"] for r in log if r["phase"].rsplit("-seed", 1)[0] == name})
        ]
        for name in names
    }
    if len(names) > CROWDED:
        _training_panels(pretrain, seeds, out)
        return
    fig, axes = plt.subplots(2, 2, figsize=(10.4, 6.4), sharex="col")
    for row, (metric, ylabel) in enumerate((("loss", "training loss"), ("acc", "training accuracy"))):
        axes[row, 0].plot([r["step"] for r in pretrain], [r[metric] for r in pretrain], "k-", lw=1.2)
        for name, lines_of in seeds.items():
            for i, lines in enumerate(lines_of):
                axes[row, 1].plot(
                    [r["step"] for r in lines],
                    [r[metric] for r in lines],
                    lw=0.8,
                    alpha=0.7,
                    color=_color(summary, name),
                    label=name if i == 0 else None,
                )
        for col in range(2):
            axes[row, col].set(ylabel=ylabel, yscale="log" if metric == "loss" else "linear")
    for col, phase in enumerate(("pretraining d(s,t)", "fine-tuning d(s,u), one line per seed")):
        axes[0, col].set_title(phase, fontsize=10)
        axes[1, col].set(xlabel="step")
    axes[1, 1].set_ylim(-0.02, 1.05)
    axes[1, 0].set_ylim(-0.02, 1.05)
    if names:
        _legend(axes[0, 1], len(names))
    fig.suptitle("training curves (log.jsonl; accuracy on the training batch, labelled graphs only)", fontsize=10)
    _save(fig, out, "training_curves.png")


def _training_panels(pretrain: list[dict], seeds: dict[str, list[list[dict]]], out: Path) -> None:
    """training_curves.png of a sweep (more than CROWDED variants): the training loss in small multiples, the
    pretraining first, then one panel per variant, its seeds in colour over every other variant's in grey."""
    fig, axes = _grid(1 + len(seeds), height=2.4)
    axes[0].plot([r["step"] for r in pretrain], [r["loss"] for r in pretrain], "k-", lw=1.2)
    axes[0].set_title("pretraining d(s,t)", fontsize=8)

    def draw(ax, name: str, own: bool) -> None:
        for lines in seeds[name]:
            ax.plot(
                [r["step"] for r in lines],
                [r["loss"] for r in lines],
                color="C0" if own else "0.85",
                lw=0.8 if own else 0.4,
            )

    _each_over_the_others(axes[1:], list(seeds), draw)
    for i, ax in enumerate(axes):
        ax.set_yscale("log")
        ax.tick_params(labelsize=7)
        if i % 4 == 0:
            ax.set_ylabel("training loss", fontsize=8)
        if i >= len(axes) - 4:
            ax.set_xlabel("step", fontsize=8)
    fig.suptitle(
        "training curves (log.jsonl; loss on the training batch, one line per seed)\n"
        "one panel per variant (blue) over the others (grey)",
        fontsize=10,
    )
    _save(fig, out, "training_curves.png")
