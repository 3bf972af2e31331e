"""Benchmark: answering the evaluation set with every reporter of a preset, each encoding every graph itself
(before) vs all reporters on the frozen pretrained encoder sharing one encoding (experiment/predict.py
`answers`, as eval.py does now).

Run (repository root):  python -m bench.eval [--preset quick]

On the preset's evaluation set (generated here from data.eval_seed, as a run does) and its frozen-encoder
variants x seeds (untrained reporters: the time does not depend on the weights), side by side in one run:
seconds for every reporter's answers from s and from t, each way, after one warm-up of each way (compile
time excluded), and their ratio. The answers are checked to be identical.
"""

import argparse
import time

import numpy as np
from flax import nnx

from bench.steps import machine
from configs import PRESETS
from experiment.evaluate import ASKED_TOGETHER
from experiment.predict import answers, predictions
from experiment.rundir import finetune_seeds, make_eval_set, new_model, variant_model
from models.objectives import PRETRAINED, variant


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="quick", choices=list(PRESETS))
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

    def shared():
        askers = [(model, v.head) for model, v in models]
        groups = [askers[i : i + ASKED_TOGETHER] for i in range(0, len(askers), ASKED_TOGETHER)]
        return [[a for g in groups for a in answers(pretrained, g, arrays, n_max, swap)] for swap in (False, True)]

    seconds, results = [], []
    for way in (each_itself, shared):
        way()  # compile
        start = time.perf_counter()
        results.append(way())
        seconds.append(time.perf_counter() - start)
        print(f"{way.__name__:<12} {seconds[-1]:8.2f} s", flush=True)
    before, now = ([a for direction in result for a in direction] for result in results)
    assert all(np.array_equal(a, b) for a, b in zip(before, now, strict=True))
    print(f"ratio before / now: {seconds[0] / seconds[1]:.2f}x (answers identical)")


if __name__ == "__main__":
    main()
