"""Evaluating a run: every report variant and seed on the run's fixed evaluation set, beside the trivial
baseline and the pretrained model's own capability, into a results directory."""

import dataclasses
import shlex
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from flax import nnx
from tqdm import tqdm

from common.cli import UsageError
from common.provenance import provenance
from configs import Config
from experiment.hosts import barrier, is_primary
from experiment.metrics import (
    Scope,
    add_distance_ceilings,
    add_held_out_pgr,
    add_pgr,
    aggregate,
    aggregate_pooled,
    at_target,
    capability,
    counts_by_distance,
    disagreement,
    exact_distances,
    explained_counts,
    explained_shares,
    longest_labelled,
    overseer_labels,
    policy_outcomes,
    policy_tables,
    pooled_parts,
    pooled_policy,
    present_families,
    query_counts,
    query_labels,
    query_outcomes,
    split_masks,
    summed_counts,
    tables,
)
from experiment.policies import Question
from experiment.predict import answers, predictions, self_query, trivial_report
from experiment.results import refuse_to_replace, write_results
from experiment.rundir import (
    PRETRAIN,
    RunError,
    finetune_seeds,
    finished_manager,
    load_config,
    load_eval_data,
    load_or_make_eval_set,
    load_reporter,
    phase_name,
    read_log,
)
from experiment.stored import load_checked, record_of
from experiment.summary import BASELINES
from graphgen.twins import TWINS, read_back, twin_arrays
from models.consistency import checks
from models.model import PathModel
from models.objectives import PRETRAINED, ceilings, variant

ASKED_TOGETHER = 12  # reporters answered per pass over the evaluation set: bounds the answers held in memory
Cell = tuple[str, int]  # (variant, seed); a label-free baseline is (name, 0)


@dataclasses.dataclass(frozen=True)
class Answers:
    """One reporter's answers: d(s,v) from s and d(t,v) from t (B, V), d(s,v) on each twin (in TWINS order, in
    the twin's ids), its own d(s,t) (B,) and, for a reporter with logits, the truth's `rank`, `p_true` and
    `rank_unlabelled` (B, V) (experiment/predict.py: truth_rank; empty for the label-free baselines)."""

    from_s: np.ndarray
    from_t: np.ndarray
    on_twins: tuple[np.ndarray, ...]
    d_st: np.ndarray
    ranked: dict[str, np.ndarray]


@dataclasses.dataclass(frozen=True)
class Scored:
    """One reporter's numbers on one seed: its tables (means by size, distance, ...), its counts by distance
    (added over seeds), its numbers pooled over its split's checked and held-out queries, and whether it is right
    at each query (for PGR)."""

    tables: dict
    counts: dict
    parts: dict
    correct: np.ndarray


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """What every reporter of a run is asked and scored against, computed once: the evaluation set and its
    twins (second presentations: new ids; one more edge), the true distances from s (`queries`) and from t,
    the pretrained model's d(s,t) answers and self-query (what it knows), the overseer's answers, and each
    variant's split with its (checked, held-out) masks."""

    cfg: Config
    arrays: dict
    pretrained: PathModel
    twin_sets: dict
    queries: dict
    from_t: np.ndarray
    d_hat: np.ndarray
    knows: np.ndarray
    o_label: np.ndarray | None
    split_of: dict
    masks: dict
    scope: Scope

    def longest(self, name: str) -> int | None:
        """The largest distance variant `name`'s labels hold (a label-free baseline: the run's split's; None for a
        variant without labels)."""
        labelled = None if name in BASELINES else variant(name)
        if labelled and not labelled.labels:
            return None
        data, everywhere = self.cfg.data, bool(labelled and labelled.labels_up_to_N)
        return longest_labelled(self.split_of[name], data.n_report, data.n_max, everywhere)

    def question(self, name: str, d_st: np.ndarray) -> Question:
        """What the candidate policies see of every question, for variant `name` whose d(s,t) answers are d_st."""
        a, label = self.arrays, self.queries["label"]
        return Question(a["s"], a["t"], d_st, label, self.from_t, self.longest(name), self.o_label)


def evaluate_run(
    run_dir: Path,
    results_dir: Path,
    names: list[str] | None = None,
    overwrite: bool = False,
    command: list[str] | None = None,
    data: Path | None = None,
    plots: bool = True,
) -> dict:
    """Evaluates the variants `names` (default: the run config's experiment.variants), every seed, into
    results_dir, with the run's training curves. Refuses (RunError) to replace the results of a different
    experiment there unless `overwrite`. `command` (script and arguments) is recorded as what made them. `data`: a
    dataset file (the data contract) to evaluate on instead of the run's evaluation set. `plots=False`: the numbers
    only (summary.json, metrics.csv), no figures."""
    cfg = load_config(run_dir)
    names = names or cfg.experiment.variant_list()
    arrays, eval_hash = load_eval_data(cfg, data) if data else load_or_make_eval_set(cfg, run_dir)
    if not overwrite:
        try:
            refuse_to_replace(results_dir / "summary.json", cfg.to_dict(), eval_hash)
        except UsageError as e:
            raise RunError(str(e)) from None
    seeds = finetune_seeds(cfg)
    for phase in [PRETRAIN, *(phase_name(name, seed) for name in names for seed in seeds)]:
        finished_manager(run_dir, phase)  # a missing phase fails now, not minutes into the evaluation
    progress = tqdm(
        total=1 + len(names) * len(seeds), desc="eval", unit="model", dynamic_ncols=True, leave=False,
        disable=not is_primary(),
    )  # fmt: skip
    ev = prepare(cfg, run_dir, arrays, names)

    # Predictions -> outcomes, a group of reporters at a time (only one group's answers are held).
    scored = {(name, 0): outcomes(ev, name, given) for name, given in baseline_answers(ev).items()}
    progress.update()
    for cell, given in reporter_answers(ev, run_dir, [(name, seed) for name in names for seed in seeds], progress):
        scored[cell] = outcomes(ev, cell[0], given)
        progress.update()
    progress.close()

    # Tables: every variant's seeds together, PGR against each variant's own oracle.
    baselines = [name for name in ev.split_of if name not in names]
    variants = {name: variant_table(ev, name, [scored[name, 0]], 0) for name in baselines}
    variants |= {name: variant_table(ev, name, [scored[name, seed] for seed in seeds], len(seeds)) for name in names}
    oracle_of = ceilings(names)
    add_pgr(variants, cfg.data.n_report, {v: o for v, o in oracle_of.items() if ev.split_of[v].kind == "size"})
    add_distance_ceilings(variants, oracle_of)
    held_out = {name: ev.masks[ev.split_of[name]][1] & ev.scope.base for name in names}  # as pooled
    ceiling = add_held_out_pgr(variants, {cell: s.correct for cell, s in scored.items()}, held_out, oracle_of, seeds)

    # Summary: the tables beside what the model knows and what the results were made of.
    summary = {
        "config": dataclasses.asdict(
            dataclasses.replace(cfg, experiment=dataclasses.replace(cfg.experiment, variants=",".join(names)))
        ),
        "eval_set_hash": eval_hash,
        "eval_data": str(data) if data else "the run's evaluation set",
        "pretrained": record_of(run_dir),
        "n_report": cfg.data.n_report,
        "capability": capability_of(ev, variants),
        "ceilings": ceiling,
        "queries": query_counts(ev.queries, arrays, ev.scope),
        "variants": variants,
        "columns": columns(variants, ev.split_of, present_families(arrays)),
        **({"overseer": overseer_summary(ev)} if cfg.data.overseer else {}),
        "checks": checks(),
        "provenance": provenance(),
    }
    if command:
        summary["command"] = shlex.join(["python", *command])
    if is_primary():  # every process evaluated the same models to the same numbers
        write_results(summary, results_dir, read_log(run_dir), plots)
    barrier("the results are written")
    return summary


def prepare(cfg: Config, run_dir: Path, arrays: dict, names: list[str]) -> Evaluation:
    """The run's `Evaluation` of `names` (beside the label-free baselines) on `arrays`."""
    n_max, vocab, run_split = cfg.data.n_max, cfg.data.vocab, cfg.data.parsed_split()
    pretrained = load_checked(cfg, run_dir)
    queries = query_labels(arrays, vocab)
    baselines = [name for name in BASELINES if name != "self-overseer" or cfg.data.learned_overseer()]
    split_of = {name: run_split for name in baselines} | {name: variant(name).split or run_split for name in names}
    masks = {split: split_masks(split, queries, arrays, cfg.data.n_report, n_max) for split in split_of.values()}
    overseer = cfg.data.overseer
    return Evaluation(
        cfg=cfg,
        arrays=arrays,
        pretrained=pretrained,
        twin_sets={name: twin_arrays(arrays, name, vocab, seed=cfg.data.eval_seed) for name in TWINS},
        queries=queries,
        from_t=exact_distances(arrays, arrays["t"], vocab),
        d_hat=predictions(pretrained, arrays, n_max),
        knows=self_query(pretrained, arrays, n_max, vocab),
        # The overseer's answer at every vertex (its beliefs as the model learned them are `self-overseer`).
        o_label=overseer_labels(overseer, queries, cfg.data.n_report, vocab) if overseer else None,
        split_of=split_of,
        masks=masks,
        scope=Scope.of(arrays, n_max),
    )


def baseline_answers(ev: Evaluation) -> dict[str, Answers]:
    """The label-free baselines' answers: the best guess from the question alone (`trivial`), the model's own
    self-query (`self`) and, with a learned overseer, what it believes the overseer answers, asked the same way."""
    pretrained, arrays, n_max, vocab = ev.pretrained, ev.arrays, ev.cfg.data.n_max, ev.cfg.data.vocab
    twins = [ev.twin_sets[name] for name in TWINS]

    def trivial(questions: dict, swap: bool = False) -> np.ndarray:
        source, target = (questions["t"], questions["s"]) if swap else (questions["s"], questions["t"])
        return trivial_report(predictions(pretrained, questions, n_max, swap=swap), source, target, vocab)

    def asked(overseer: bool = False) -> list[np.ndarray]:
        return [
            self_query(pretrained, q, n_max, vocab, swap=swap, overseer=overseer)
            for q, swap in [(arrays, True), *((q, False) for q in twins)]
        ]

    given = {
        "trivial": [
            trivial_report(ev.d_hat, arrays["s"], arrays["t"], vocab),
            trivial(arrays, swap=True),
            *map(trivial, twins),
        ],
        "self": [ev.knows, *asked()],
    }
    if ev.cfg.data.learned_overseer():
        given["self-overseer"] = [self_query(pretrained, arrays, n_max, vocab, overseer=True), *asked(overseer=True)]
    return {name: Answers(a[0], a[1], tuple(a[2:]), ev.d_hat, {}) for name, a in given.items()}


def reporter_answers(ev: Evaluation, run_dir: Path, cells: list[Cell], progress) -> Iterator[tuple[Cell, Answers]]:
    """Every trained reporter's `Answers`, a group at a time. Reporters on the frozen pretrained encoder are asked
    together, ASKED_TOGETHER at a time: each graph is encoded once for all of them; the others one by one."""
    cfg, arrays, n_max = ev.cfg, ev.arrays, ev.cfg.data.n_max
    shared = [cell for cell in cells if not variant(cell[0]).train_encoder]
    groups = [(shared[i : i + ASKED_TOGETHER], ev.pretrained) for i in range(0, len(shared), ASKED_TOGETHER)]
    groups += [([cell], None) for cell in cells if variant(cell[0]).train_encoder]
    pretrained_state = nnx.state(ev.pretrained, PRETRAINED)
    for group, encoder in groups:
        models = {}
        for name, seed in group:
            progress.set_postfix_str(f"{name} seed {seed}")
            try:
                models[name, seed] = load_reporter(cfg, run_dir, name, seed, pretrained_state)
            except RunError:
                progress.close()  # before the error, so that the error is the last line
                raise
        encoder = encoder or models[group[0]]
        askers = [(models[cell], variant(cell[0]).head) for cell in group]
        # From s: the answers with the truth's rank, and each model's own d(s,t) (its d(s,t) head, the policies').
        from_s = answers(
            encoder,
            askers + [(model, None) for model in models.values()],
            arrays,
            n_max,
            truth=ev.queries["label"],
            longest=[ev.longest(name) for name, _ in group] + [None] * len(models),
        )
        rest = [
            answers(encoder, askers, q, n_max, swap)
            for q, swap in [(arrays, True), *((ev.twin_sets[n], False) for n in TWINS)]
        ]
        for i, cell in enumerate(group):
            (given, rank, p_true, rank_unlabelled), d_st = from_s[i], from_s[len(group) + i]
            ranked = {"rank": rank, "p_true": p_true, "rank_unlabelled": rank_unlabelled}
            yield cell, Answers(given, rest[0][i], tuple(r[i] for r in rest[1:]), d_st, ranked)


def outcomes(ev: Evaluation, name: str, given: Answers) -> Scored:
    """The numbers of variant `name`'s reporter on one seed, from its answers."""
    twins = {twin: read_back(ev.twin_sets[twin], a) for twin, a in zip(TWINS, given.on_twins, strict=True)}
    per_query = (
        query_outcomes(given.from_s, given.from_t, ev.d_hat, ev.knows, ev.arrays, ev.cfg.data.vocab, twins, ev.queries)
        | given.ranked
    )
    label, (checked, held_out) = ev.queries["label"], ev.masks[ev.split_of[name]]
    parts = pooled_parts(per_query, (checked, held_out), ev.scope)
    table = tables(per_query, ev.arrays, ev.scope)
    if ev.o_label is not None:  # which policy it follows where the overseer and the truth disagree
        policy = policy_outcomes(given.from_s, ev.queries, ev.o_label)
        table |= policy_tables(policy, label, ev.arrays, ev.scope)
        parts["policy"] = pooled_policy(policy, held_out & ev.scope.base)
    # What it says instead, on its held-out queries: its answers, the policies that explain them, the truth's rank.
    counts = {
        "answers_by_distance": counts_by_distance(label, given.from_s, held_out),
        "explained_by_distance": explained_counts(given.from_s, ev.question(name, given.d_st), label, held_out),
    }
    if given.ranked:  # among all classes, and (where no label showed the truth) among the unlabelled ones alone
        rank, unlabelled = given.ranked["rank"], given.ranked["rank_unlabelled"]
        counts["rank_by_distance"] = counts_by_distance(label, rank, held_out)
        counts["unlabelled_rank_by_distance"] = counts_by_distance(label, unlabelled, held_out & (unlabelled > 0))
    return Scored(table, counts, parts, per_query["acc"])


def variant_table(ev: Evaluation, name: str, scored: list[Scored], seeds: int) -> dict:
    """A variant's entry of the summary from its seeds' numbers (a label-free baseline: `seeds` 0, one entry):
    the means and 95% intervals of its tables, its counts added over the seeds, its pooled numbers."""
    counted = {key: summed_counts([s.counts[key] for s in scored]) for key in scored[0].counts}
    counted["explained_by_distance"] = explained_shares(counted["explained_by_distance"])
    return {
        "seeds": seeds,
        "split": str(ev.split_of[name]),
        "longest_labelled": ev.longest(name),
        **(scored[0].tables if not seeds else {k: aggregate([s.tables[k] for s in scored]) for k in scored[0].tables}),
        "pooled": aggregate_pooled([s.parts for s in scored]),
        **counted,
    }


def capability_of(ev: Evaluation, variants: dict) -> dict:
    """What the pretrained model knows: d(s,t) (and with a learned overseer, o(s,t)) by size and distance, the
    self-query's d(s,u) by size and distance, and the probes' accuracy by size."""
    learned, arrays, n_max = ev.cfg.data.learned_overseer(), ev.arrays, ev.cfg.data.n_max
    o_hat = predictions(ev.pretrained, arrays, n_max, overseer=True) if learned else None
    known = capability(ev.d_hat, arrays, n_max, o_hat, at_target(ev.o_label, arrays) if learned else None)
    known["knows_su_by_size"] = {n: row["acc"] for n, row in variants["self"]["by_size"].items()}
    known["knows_su_by_distance"] = {d: row["acc"] for d, row in variants["self"]["by_distance"].items()}
    for probe in ("probe", "mlp-probe"):
        if probe in variants:
            known[f"{probe.replace('-', '_')}_acc_by_size"] = {
                n: r["acc"] for n, r in variants[probe]["by_size"].items()
            }
    return known


def columns(variants: dict, split_of: dict, families: list[str]) -> list[dict]:
    """One entry per variant under a family split (the columns sweep's cells): the held-out family, the
    labelled ones and their number k, and the variant's accuracy pooled over the held-out family and over the
    labelled ones (sizes <= N), withheld knowledge and what the model knows there (the self-query)."""
    entries = []
    for name, split in split_of.items():
        if split.kind != "family" or name not in variants or not variants[name]["seeds"]:
            continue
        held_out, checked = variants[name]["pooled"]["held_out"], variants[name]["pooled"]["checked"]
        if held_out["acc"] is None:  # an evaluation set without the held-out family (eval.py --data)
            continue
        labelled = split.labelled_families(families)
        entries.append(
            {
                "variant": name,
                "held_out": split.held_out,
                "labelled": labelled,
                "k": len(labelled),
                "held_out_acc": _part(held_out, "acc"),
                "checked_acc": _part(checked, "acc"),
                "withheld": _part(held_out, "knows_withholds"),
                "knows": held_out["knows_says"] + held_out["knows_withholds"],
            }
        )
    return sorted(entries, key=lambda e: (e["held_out"], e["k"]))


def overseer_summary(ev: Evaluation) -> dict:
    """The run's overseer: its name, whether pretraining learned it, the checked size it equals d up to, and the
    share of path queries where it disagrees with the truth, by size."""
    data = ev.cfg.data
    return {
        "name": data.overseer,
        "learned": bool(data.learned_overseer()),
        "reach": data.n_report,
        "disagree_by_size": disagreement(ev.queries, ev.o_label, ev.arrays, ev.scope),
    }


def _part(pooled: dict, metric: str) -> dict:
    """A pooled metric's mean, interval and per-seed values, as one entry of `columns`."""
    if pooled[metric] is None:
        return None
    return {"mean": pooled[metric], "ci95": pooled[f"{metric}_ci95"], "per_seed": pooled[f"{metric}_per_seed"]}


def capability_report(capability: dict) -> str:
    """What train.py prints at the end: d(s,t) accuracy by size, and a loud warning when capability_ok is false."""
    lines = []
    for key, question in (("d_st_acc_by_size", "d(s,t)"), ("o_st_acc_by_size", "the overseer's o(s,t)")):
        if key not in capability:
            continue
        by_size = capability[key]
        lines.append(f"{question} accuracy by size: " + "  ".join(f"{n}:{acc:.3f}" for n, acc in by_size.items()))
        bad = [n for n, acc in by_size.items() if int(n) <= capability["n_max"] and acc < capability["threshold"]]
        if bad:
            lines.append(
                f"\n*** capability_ok: false *** the pretrained model does not know {question} on sizes "
                f"{', '.join(bad)} (accuracy < {capability['threshold']}). Honesty results on this run say "
                "nothing. ***\n"
            )
    return "\n".join(lines)
