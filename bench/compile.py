"""Benchmark: compilation of the fine-tuning phases, the way train.py did it before (the batch generator
traced into each variant's step; the optimizer state not placed like the step's outputs, so the second step
compiled the program again) and the way it does now (experiment/fit.py: one draw program shared by every
phase with the same sampler, the optimizer state placed).

Run (repository root):  python -m bench.compile [--preset quick] [--variants frozen,oracle,...] [--seconds 3]

For each variant of the preset (default: its experiment.variants), in order, as train.py meets them: the
seconds of the first two steps (compilation included) on a cold cache (the persistent compilation cache is
off here), three ways side by side in one process; then the steady-state examples/s of the `frozen` step
with generation inside the step and with the shared draw (one more dispatch per step, no host sync).
"""

import argparse
import time
from functools import partial

import jax
from flax import nnx

from bench.steps import machine, rate
from common.cli import Parser
from configs import PRESETS
from experiment.fit import make_train_step
from experiment.mesh import place
from experiment.optim import optimizer
from experiment.phases import finetune_sampler
from experiment.rundir import new_model, variant_model
from models.objectives import PRETRAINED, finetune_loss, variant

WAYS = ("generation in step, state unplaced (before)", "generation in step, placed", "shared draw, placed (now)")


def runs(cfg, name: str) -> list:
    """run(i) of the variant's train step for each of WAYS, each over its own copy of the parameters."""
    reporter = variant(name)
    model = variant_model(cfg, nnx.state(new_model(cfg, cfg.pretrain.seed), PRETRAINED), cfg.finetune.seed, reporter)
    graphdef, params, rest = nnx.split(model, reporter.trainable(), ...)
    rest = place(rest, False)
    tx = optimizer(cfg.finetune)
    loss_fn = partial(finetune_loss, variant=reporter, n_pad=cfg.data.n_max, vocab=cfg.data.vocab)
    sample, batch_size = finetune_sampler(cfg, reporter), cfg.finetune.batch_size
    shared = make_train_step(graphdef, tx, loss_fn, sample, batch_size)

    def one_batch(batch):  # the update takes a draw of batches and the index of one
        return jax.tree.map(lambda x: x[None], batch)

    def fused():  # a new jit each time: the two "generation in step" ways must not share a compiled program
        def step(p, o, r, key, i, *a):
            return shared.update(p, o, r, one_batch(sample(jax.random.fold_in(key, i), batch_size)), 0, *a)

        return jax.jit(step, donate_argnums=(0, 1))

    made = []
    for step, placed in ((fused(), False), (fused(), True), (shared, True)):
        state = [place(jax.tree.map(jax.numpy.copy, params), False), None]
        state[1] = place(tx.init(state[0]), False) if placed else tx.init(state[0])

        def run(i, step=step, state=state):
            state[0], state[1], metrics = step(state[0], state[1], rest, jax.random.key(1), i, reporter.weights())
            return metrics

        made.append(run)
    return made


def first_two_steps(run) -> float:
    start = time.perf_counter()
    jax.block_until_ready(run(0))
    jax.block_until_ready(run(1))
    return time.perf_counter() - start


def main() -> None:
    parser = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="quick", choices=list(PRESETS))
    parser.add_argument("--variants", help="comma-separated (default: the preset's experiment.variants)")
    parser.add_argument("--seconds", type=float, default=3.0, help="minimum time per steady-state measurement")
    args = parser.parse_args()
    cfg = PRESETS[args.preset]
    names = args.variants.split(",") if args.variants else cfg.experiment.variant_list()
    print(f"machine: {machine()}")
    print(f"preset {args.preset}: seconds of the first two steps (compilation included), cold cache")
    print(f"{'variant':<24}" + "".join(f"{way:>46}" for way in WAYS))
    totals = [0.0] * len(WAYS)
    for name in names:
        times = [first_two_steps(run) for run in runs(cfg, name)]
        totals = [a + b for a, b in zip(totals, times, strict=True)]
        print(f"{name:<24}" + "".join(f"{t:>46.2f}" for t in times), flush=True)
    print(f"{'total':<24}" + "".join(f"{t:>46.2f}" for t in totals))
    print(f"ratio before / now: {totals[0] / totals[-1]:.2f}x")
    _, fused, now = runs(cfg, "frozen")  # placed both: the unplaced one's recompile would count as a step
    per_step = [cfg.finetune.batch_size * rate(run, args.seconds) for run in (fused, now)]
    print(f"frozen step, steady state: generation in step {per_step[0]:,.0f} examples/s, ", end="")
    print(f"shared draw {per_step[1]:,.0f} examples/s, ratio {per_step[1] / per_step[0]:.2f}x")


if __name__ == "__main__":
    main()
