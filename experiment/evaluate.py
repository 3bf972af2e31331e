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
from experiment.metrics import (
    add_pgr,
    add_pooled_pgr,
    aggregate,
    capability,
    pooled_accuracy,
    query_outcomes,
    tables,
)
from experiment.predict import answers, predictions, self_query, trivial_report
from experiment.pretrained import load_checked, record_of
from experiment.results import refuse_to_replace, write_results
from experiment.rundir import (
    PRETRAIN,
    RunError,
    finetune_seeds,
    finished_manager,
    load_config,
    load_or_make_eval_set,
    load_reporter,
    phase_name,
    read_log,
)
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
) -> dict:
    """Evaluates the variants `names` (default: the run config's experiment.variants), every seed, into
    results_dir, with the run's training curves. Refuses (RunError) to replace the results of a different
    experiment there unless `overwrite`. `command` (script and arguments) is recorded as what made them."""
    cfg = load_config(run_dir)
    names = names or cfg.experiment.variant_list()
    arrays, eval_hash = load_or_make_eval_set(cfg, run_dir)
    if not overwrite:
        try:
            refuse_to_replace(results_dir / "summary.json", cfg.to_dict(), eval_hash)
        except UsageError as e:
            raise RunError(str(e)) from None
    seeds = finetune_seeds(cfg)
    for phase in [PRETRAIN, *(phase_name(name, seed) for name in names for seed in seeds)]:
        finished_manager(run_dir, phase)  # a missing phase fails now, not minutes into the evaluation
    sizes, n_max, vocab = arrays["num_nodes"], cfg.data.n_max, cfg.data.vocab
    pretrained = load_checked(cfg, run_dir)
    progress = tqdm(total=1 + len(names) * len(seeds), desc="eval", unit="model", dynamic_ncols=True, leave=False)
    d_hat = predictions(pretrained, arrays, n_max)
    knows = self_query(pretrained, arrays, n_max, vocab)
    # Second presentations of every question (new ids; one more edge), for the checks that compare two.
    twin_sets = {name: twin_arrays(arrays, name, vocab, seed=cfg.data.eval_seed) for name in TWINS}

    def scored(pred_s, pred_t, *on_twins) -> tuple[dict, float]:
        """Tables of one reporter, and its accuracy pooled over the sizes n+1..N (for PGR), from its answers
        from s and from t and its answers d(s,v) on each twin (in TWINS order, in the twin's ids)."""
        twins = {name: read_back(twin_sets[name], a) for name, a in zip(TWINS, on_twins, strict=True)}
        outcomes = query_outcomes(pred_s, pred_t, d_hat, knows, arrays, vocab, twins)
        return tables(outcomes, arrays), pooled_accuracy(outcomes, sizes, cfg.data.n_report, n_max)

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
    variants, pooled = {}, {}
    for name, given in baselines.items():
        table, pooled_acc = scored(*given)
        variants[name], pooled[name] = {"seeds": 0, **table}, [pooled_acc]
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
            scores[cell] = scored(*asked)
            progress.update()
    for name in names:
        per_seed, pooled[name] = [scores[name, seed][0] for seed in seeds], [scores[name, seed][1] for seed in seeds]
        variants[name] = {"seeds": len(per_seed), **{k: aggregate([t[k] for t in per_seed]) for k in per_seed[0]}}
    progress.close()
    oracle_of = ceilings(names)
    add_pgr(variants, cfg.data.n_report, oracle_of)
    ceiling = add_pooled_pgr(variants, pooled, oracle_of)
    known = capability(d_hat, arrays, n_max)
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
        "pretrained": record_of(run_dir),
        "n_report": cfg.data.n_report,
        "capability": known,
        "ceilings": ceiling,
        "variants": variants,
        "checks": checks(),
        "provenance": provenance(),
    }
    if command:
        summary["command"] = shlex.join(["python", *command])
    write_results(summary, results_dir, read_log(run_dir))
    return summary


def capability_report(capability: dict) -> str:
    """What train.py prints at the end: d(s,t) accuracy by size, and a loud warning when capability_ok is false."""
    by_size = capability["d_st_acc_by_size"]
    lines = ["d(s,t) accuracy by size: " + "  ".join(f"{n}:{acc:.3f}" for n, acc in by_size.items())]
    if not capability["capability_ok"]:
        bad = [n for n, acc in by_size.items() if int(n) <= capability["n_max"] and acc < capability["threshold"]]
        lines.append(
            f"\n*** capability_ok: false *** the pretrained model does not know d(s,t) on sizes {', '.join(bad)} "
            f"(accuracy < {capability['threshold']}). Honesty results on this run say nothing. ***\n"
        )
    return "\n".join(lines)
