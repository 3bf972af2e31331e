"""Evaluating a run: every report variant and seed on the run's fixed evaluation set, beside the trivial
baseline and the pretrained model's own capability, into a results directory."""

import dataclasses
import shlex
from pathlib import Path

import numpy as np
from flax import nnx
from tqdm import tqdm

from common.cli import UsageError
from common.provenance import provenance
from configs import DataConfig
from experiment.hosts import barrier, is_primary
from experiment.metrics import (
    add_held_out_pgr,
    add_pgr,
    aggregate,
    aggregate_pooled,
    at_target,
    capability,
    disagreement,
    overseer_labels,
    policy_outcomes,
    policy_tables,
    pooled,
    pooled_policy,
    present_families,
    query_labels,
    query_outcomes,
    split_masks,
    tables,
)
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
from graphgen.twins import TWINS, read_back, twin_arrays
from models.consistency import checks
from models.objectives import PRETRAINED, ceilings, variant

ASKED_TOGETHER = 12  # reporters answered per pass over the evaluation set: bounds the answers held in memory


def evaluate_run(
    run_dir: Path,
    results_dir: Path,
    names: list[str] | None = None,
    overwrite: bool = False,
    command: list[str] | None = None,
    data: Path | None = None,
) -> dict:
    """Evaluates the variants `names` (default: the run config's experiment.variants), every seed, into
    results_dir, with the run's training curves. Refuses (RunError) to replace the results of a different
    experiment there unless `overwrite`. `command` (script and arguments) is recorded as what made them. `data`: a
    dataset file (the data contract) to evaluate on instead of the run's evaluation set."""
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
    n_max, vocab = cfg.data.n_max, cfg.data.vocab
    pretrained = load_checked(cfg, run_dir)
    progress = tqdm(
        total=1 + len(names) * len(seeds), desc="eval", unit="model", dynamic_ncols=True, leave=False,
        disable=not is_primary(),
    )  # fmt: skip
    d_hat = predictions(pretrained, arrays, n_max)
    knows = self_query(pretrained, arrays, n_max, vocab)
    # Second presentations of every question (new ids; one more edge), for the checks that compare two.
    twin_sets = {name: twin_arrays(arrays, name, vocab, seed=cfg.data.eval_seed) for name in TWINS}
    queries = query_labels(arrays, vocab)
    # The overseer's answer at every vertex, and its beliefs as the model learned them (the head's o(s,v)).
    overseer, learned = cfg.data.overseer, cfg.data.learned_overseer()
    o_label = overseer_labels(overseer, queries, cfg.data.n_report, vocab) if overseer else None
    run_split = cfg.data.parsed_split()
    baseline_names = ["trivial", "self", *(["self-overseer"] if learned else [])]
    split_of = {name: run_split for name in baseline_names} | {name: variant(name).split or run_split for name in names}
    masks = {split: split_masks(split, queries, arrays, cfg.data.n_report, n_max) for split in split_of.values()}

    def scored(name: str, pred_s, pred_t, *on_twins) -> tuple[dict, dict, np.ndarray]:
        """Tables of one reporter, its numbers pooled over its split's checked and held-out queries, and
        whether it is right at each query (for PGR), from its answers from s and from t and its answers d(s,v)
        on each twin (in TWINS order, in the twin's ids)."""
        twins = {name: read_back(twin_sets[name], a) for name, a in zip(TWINS, on_twins, strict=True)}
        outcomes = query_outcomes(pred_s, pred_t, d_hat, knows, arrays, vocab, twins, queries)
        checked, held_out = masks[split_of[name]]
        parts = {"checked": pooled(outcomes, checked), "held_out": pooled(outcomes, held_out)}
        table = tables(outcomes, arrays)
        if overseer:  # which policy it follows where the overseer and the truth disagree
            policy = policy_outcomes(pred_s, queries, o_label)
            table |= policy_tables(policy, queries["label"], arrays)
            parts["policy"] = pooled_policy(policy, held_out)
        return table, parts, outcomes["acc"]

    # Two label-free baselines: the best guess from the question alone, and the model's own self-query.
    def trivial(questions: dict, swap: bool = False, d_st: np.ndarray | None = None) -> np.ndarray:
        """The trivial report on `questions`, from the pretrained head's d(s,t) (`d_st` when already asked)."""
        source, target = (questions["t"], questions["s"]) if swap else (questions["s"], questions["t"])
        d_st = predictions(pretrained, questions, n_max, swap=swap) if d_st is None else d_st
        return trivial_report(d_st, source, target, vocab)

    baselines = {
        "trivial": (
            trivial(arrays, d_st=d_hat),
            trivial(arrays, swap=True),
            *(trivial(twin_sets[name]) for name in TWINS),
        ),
        "self": (
            knows,
            self_query(pretrained, arrays, n_max, vocab, swap=True),
            *(self_query(pretrained, twin_sets[name], n_max, vocab) for name in TWINS),
        ),
    }
    if learned:  # what the model believes the overseer answers, asked like the self-query
        baselines["self-overseer"] = (
            self_query(pretrained, arrays, n_max, vocab, overseer=True),
            self_query(pretrained, arrays, n_max, vocab, swap=True, overseer=True),
            *(self_query(pretrained, twin_sets[name], n_max, vocab, overseer=True) for name in TWINS),
        )
    variants, correct = {}, {}
    for name, given in baselines.items():
        table, parts, correct[name, 0] = scored(name, *given)
        variants[name] = {"seeds": 0, "split": str(split_of[name]), **table, "pooled": aggregate_pooled([parts])}
    progress.update()
    pretrained_state = nnx.state(pretrained, PRETRAINED)

    def reporter(name: str, seed: int):
        progress.set_postfix_str(f"{name} seed {seed}")
        try:
            return load_reporter(cfg, run_dir, name, seed, pretrained_state)
        except RunError:
            progress.close()  # before the error, so that the error is the last line
            raise

    def reports(cells: list[tuple[str, int]], encoder=None) -> dict:
        """(name, seed) -> the reporter's answers from s, from t and on each twin. Reporters on the frozen pretrained
        encoder (encoder=pretrained) are asked together: each graph is encoded once for all of them."""
        models = {cell: reporter(*cell) for cell in cells}
        askers = [(models[cell], variant(cell[0]).head) for cell in cells]
        questions = [(arrays, False), (arrays, True), *((twin_sets[name], False) for name in TWINS)]
        asked = [answers(encoder or models[cells[0]], askers, q, n_max, swap) for q, swap in questions]
        return dict(zip(cells, zip(*asked, strict=True), strict=True))

    # Reporters on the frozen pretrained encoder in groups that share its encoding, the others one by one.
    cells = [(name, seed) for name in names for seed in seeds]
    shared = [cell for cell in cells if not variant(cell[0]).train_encoder]
    groups = [(shared[i : i + ASKED_TOGETHER], pretrained) for i in range(0, len(shared), ASKED_TOGETHER)]
    groups += [([cell], None) for cell in cells if variant(cell[0]).train_encoder]
    scores = {}
    for group, encoder in groups:
        for cell, asked in reports(group, encoder).items():
            scores[cell] = scored(cell[0], *asked)
            correct[cell] = scores[cell][2]
            progress.update()
    for name in names:
        per_seed = [scores[name, seed][0] for seed in seeds]
        variants[name] = {
            "seeds": len(per_seed),
            "split": str(split_of[name]),
            **{k: aggregate([t[k] for t in per_seed]) for k in per_seed[0]},
            "pooled": aggregate_pooled([scores[name, seed][1] for seed in seeds]),
        }
    progress.close()
    oracle_of = ceilings(names)
    add_pgr(variants, cfg.data.n_report, {v: o for v, o in oracle_of.items() if split_of[v].kind == "size"})
    held_out = {name: masks[split_of[name]][1] for name in names}
    ceiling = add_held_out_pgr(variants, correct, held_out, oracle_of, seeds)
    o_hat = predictions(pretrained, arrays, n_max, overseer=True) if learned else None
    o_st = at_target(o_label, arrays) if learned else None
    known = capability(d_hat, arrays, n_max, o_hat, o_st)
    known["knows_su_by_size"] = {n: row["acc"] for n, row in variants["self"]["by_size"].items()}
    known["knows_su_by_distance"] = {d: row["acc"] for d, row in variants["self"]["by_distance"].items()}
    for probe in ("probe", "mlp-probe"):
        if probe in variants:
            known[f"{probe.replace('-', '_')}_acc_by_size"] = {
                n: r["acc"] for n, r in variants[probe]["by_size"].items()
            }

    summary = {
        "config": dataclasses.asdict(
            dataclasses.replace(cfg, experiment=dataclasses.replace(cfg.experiment, variants=",".join(names)))
        ),
        "eval_set_hash": eval_hash,
        "eval_data": str(data) if data else "the run's evaluation set",
        "pretrained": record_of(run_dir),
        "n_report": cfg.data.n_report,
        "capability": known,
        "ceilings": ceiling,
        "variants": variants,
        "columns": columns(variants, split_of, present_families(arrays)),
        **({"overseer": overseer_summary(cfg.data, queries, o_label, arrays)} if overseer else {}),
        "checks": checks(),
        "provenance": provenance(),
    }
    if command:
        summary["command"] = shlex.join(["python", *command])
    if is_primary():  # every process evaluated the same models to the same numbers
        write_results(summary, results_dir, read_log(run_dir))
    barrier("the results are written")
    return summary


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


def overseer_summary(data: DataConfig, queries: dict, o_label: np.ndarray, arrays: dict) -> dict:
    """The run's overseer: its name, whether pretraining learned it, the checked size it equals d up to, and the
    share of path queries where it disagrees with the truth, by size."""
    return {
        "name": data.overseer,
        "learned": bool(data.learned_overseer()),
        "reach": data.n_report,
        "disagree_by_size": disagreement(queries, o_label, arrays),
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
