"""Benchmark: answering the evaluation set with every reporter of a preset, each encoding every graph itself
(before) vs all reporters on the frozen pretrained encoder sharing one encoding (experiment/predict.py
`answers`, as eval.py does now); the same shared answers with the truth's rank beside them (issue #33) vs
without; and the self-query, the evaluation's largest part, at several chunk sizes.

Run (repository root):  python -m bench.eval [--preset quick] [--chunks 256,2048] [--self-query-only]

On the preset's evaluation set (generated here from data.eval_seed, as a run does) and its frozen-encoder
variants x seeds (untrained reporters: the time does not depend on the weights), side by side in one run:
seconds for every reporter's answers from s and from t, each way, after one warm-up of each way (compile
time excluded), and their ratio. The answers are checked to be identical. Then the shared answers from s with
each reporter's rank, probability and unlabelled rank of the true d(s,v) computed on the device beside the
argmax (`answers(..., truth, longest)`, as eval.py asks from s) against the same answers alone. Then the
self-query (the d(s,t) head asked with t := v for every vertex v of every graph: one encoding per vertex) at each
--chunks size (examples per compiled chunk; eval.py uses 256 on a CPU, 2,048 on an accelerator), the same way,
with its ratio to the first size.
"""

import argparse
import time

import numpy as np
from flax import nnx

import experiment.predict
from bench.steps import machine
from common.cli import Parser, positive_ints
from configs import PRESETS
from experiment.evaluate import ASKED_TOGETHER
from experiment.metrics import query_labels
from experiment.predict import answers, predictions, self_query
from experiment.rundir import finetune_seeds, make_eval_set, new_model, variant_model
from models.objectives import PRETRAINED, variant


def main() -> None:
    parser = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="quick", choices=list(PRESETS))
    parser.add_argument(
        "--chunks", type=positive_ints, default=[256, 2048], help="comma-separated chunk sizes for the self-query"
    )
    parser.add_argument("--self-query-only", action="store_true", help="skip the reporters' comparison")
    args = parser.parse_args()
    cfg = PRESETS[args.preset]
    arrays, n_max = make_eval_set(cfg.data), cfg.data.n_max
    pretrained = new_model(cfg, cfg.pretrain.seed)
    state = nnx.state(pretrained, PRETRAINED)
    cells = [(name, seed) for name in cfg.experiment.variant_list() for seed in finetune_seeds(cfg)]
    cells = [cell for cell in cells if not variant(cell[0]).train_encoder]
    models = [(variant_model(cfg, state, seed, variant(name)), variant(name)) for name, seed in cells]
    print(f"machine: {machine()}")
    print(f"preset {args.preset}: {len(arrays['s'])} graphs, {len(models)} reporters on the frozen encoder")

    def each_itself():
        return [[predictions(model, arrays, n_max, v, swap) for model, v in models] for swap in (False, True)]

    askers = [(model, v.head) for model, v in models]
    groups = [askers[i : i + ASKED_TOGETHER] for i in range(0, len(askers), ASKED_TOGETHER)]

    def shared():
        return [[a for g in groups for a in answers(pretrained, g, arrays, n_max, swap)] for swap in (False, True)]

    truth = query_labels(arrays, cfg.data.vocab)["label"]

    def from_s_alone():
        return [a for g in groups for a in answers(pretrained, g, arrays, n_max)]

    def from_s_with_rank():
        longest = [cfg.data.n_report - 1] * ASKED_TOGETHER  # (any labelled distance: the same work)
        return [
            a for g in groups for a in answers(pretrained, g, arrays, n_max, truth=truth, longest=longest[: len(g)])
        ]

    def timed(way, label: str) -> tuple[float, list]:
        way()  # compile
        start = time.perf_counter()
        result = way()
        seconds = time.perf_counter() - start
        print(f"{label:<22} {seconds:8.2f} s", flush=True)
        return seconds, result

    if not args.self_query_only:
        (before, first), (now, second) = (timed(way, way.__name__) for way in (each_itself, shared))
        flat = ([a for direction in result for a in direction] for result in (first, second))
        assert all(np.array_equal(a, b) for a, b in zip(*flat, strict=True))
        print(f"ratio before / now: {before / now:.2f}x (answers identical)")
        (alone, plain), (ranked, with_rank) = (timed(way, way.__name__) for way in (from_s_alone, from_s_with_rank))
        assert all(np.array_equal(a, r[0]) for a, r in zip(plain, with_rank, strict=True))
        print(f"ratio with the truth's rank / without: {ranked / alone:.2f}x (answers identical)")

    asked = int((arrays["num_nodes"] - 1).sum())  # every vertex but s (those without an edge are not asked)
    print(f"self-query: up to {asked:,} (graph, vertex) questions")
    times, results = [], []
    for chunk in args.chunks:
        experiment.predict.eval_batch_size = lambda chunk=chunk: chunk  # what in_buckets reads at each call
        seconds, result = timed(lambda: self_query(pretrained, arrays, n_max, cfg.data.vocab), f"chunks of {chunk}")
        times.append(seconds)
        results.append(result)
        print(f"  {asked / seconds:,.0f} questions/s, {times[0] / seconds:.2f}x the first size", flush=True)
    assert all(np.array_equal(results[0], r) for r in results)


if __name__ == "__main__":
    main()
