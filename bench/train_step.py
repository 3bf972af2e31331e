"""Benchmark: train-step throughput, model FLOP utilisation, and data generation vs consumption.

Run (repository root):  python -m bench.train_step [--preset quick|paper] [--dtype float32|bfloat16]
                        [--draw-ahead K] [--seconds 5]

At the preset's shapes (batch, sizes, padding, model), side by side in one run on jax.devices():
- examples/s of the pretraining step (encoder + d(s,t) head) and of the `frozen` fine-tuning step (report
  head only), each generating its own batch on device as in train.py; compile time excluded;
- model FLOP utilisation (MFU): the step's model FLOPs per second (counted analytically, see bench/steps.py:
  matmul FLOPs of forward and backward; the batch generation inside the step costs time but counts no FLOPs)
  divided by the FLOP/s of one large jitted matmul of the same dtype measured in the same run. Each step
  step is also timed on a fixed batch (no generation): "gen share" = 1 - fixed-batch time / step time, the
  share of the step that generation costs;
- examples/s of the generator alone (graphgen sample_batch at the step's shapes; in pretraining with
  data.pool: pool x batch examples drawn per kept batch), drawing draw_ahead batches per call as the step
  does, and its ratio to what the step consumes.
"""

import argparse

import jax
import jax.numpy as jnp

from bench.steps import bench_config, finetune_step, machine, pretrain_step, rate
from common.cli import Parser, enable_compilation_cache, positive_int
from configs import PRESETS
from experiment.fit import drawer
from experiment.mesh import data_mesh
from experiment.phases import batch_sampler


def matmul_flops_per_s(size: int, dtype: str, seconds: float) -> float:
    a = jax.random.normal(jax.random.key(0), (size, size), dtype)
    b = jax.random.normal(jax.random.key(1), (size, size), dtype)
    matmul = jax.jit(lambda a, b, i: (a + i.astype(dtype)) @ b)  # i: a new input every call, nothing cached
    return 2 * size**3 * rate(lambda i: matmul(a, b, jnp.float32(i) * 1e-6), seconds)


def generator_rate(sample, batch_size: int, ahead: int, seconds: float) -> float:
    """Examples/s of the draw the train step makes: `ahead` batches per call (experiment/fit.py: drawer)."""
    draw = drawer(batch_size, None, data_mesh(), ahead)
    return ahead * batch_size * rate(lambda i: draw(sample, jax.random.key(7), i * ahead), seconds)


def main() -> None:
    parser = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="quick", choices=["quick", "paper"])
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--draw-ahead", type=positive_int, help="batches per generator call (default: the preset's)")
    parser.add_argument("--seconds", type=float, default=5.0, help="minimum time per measurement")
    parser.add_argument("--matmul", type=int, help="matmul size (default 2048 on CPU, 8192 on accelerators)")
    args = parser.parse_args()
    enable_compilation_cache()

    cfg = bench_config(PRESETS[args.preset], args.dtype, args.draw_ahead)
    size = args.matmul or (2048 if jax.devices()[0].platform == "cpu" else 8192)
    print(f"machine: {machine()}")
    print(f"preset {args.preset}, dtype {args.dtype}, draw ahead {cfg.pretrain.draw_ahead}/{cfg.finetune.draw_ahead}")
    print(f"model {cfg.model}")
    peak = matmul_flops_per_s(size, args.dtype, args.seconds)
    print(f"matmul {size}x{size} {args.dtype}: {peak / 1e9:,.1f} GFLOP/s (the MFU reference)")

    phases = {
        "pretrain": (pretrain_step, batch_sampler(cfg, cfg.data.n_max, pool=cfg.data.pool), cfg.pretrain),
        "finetune (frozen)": (
            finetune_step,
            batch_sampler(cfg, cfg.data.n_report, pool=cfg.data.finetune_pool),
            cfg.finetune,
        ),
    }
    header = f"{'step':<18} {'batch':>5} {'examples/s':>11} {'fixed batch':>11} {'gen share':>9} "
    print(f"{header}{'GFLOP/ex':>9} {'GFLOP/s':>8} {'MFU':>6}   generator ex/s  gen/step")
    for name, (make, sample, opt) in phases.items():
        fixed = jax.jit(sample, static_argnums=1)(jax.random.key(3), opt.batch_size)
        step, fixed_step = make(cfg), make(cfg, sample=lambda key, batch_size, fixed=fixed: fixed)
        steps_per_s, fixed_per_s = rate(step.run, args.seconds), rate(fixed_step.run, args.seconds)
        generated = generator_rate(sample, opt.batch_size, opt.draw_ahead, args.seconds)
        flops = step.flops * steps_per_s
        line = f"{name:<18} {step.batch_size:>5} {step.batch_size * steps_per_s:>11,.0f} "
        line += f"{step.batch_size * fixed_per_s:>11,.0f} {1 - steps_per_s / fixed_per_s:>9.0%} "
        line += f"{step.flops / step.batch_size / 1e9:>9.3f} {flops / 1e9:>8.1f} {flops / peak:>6.1%}"
        line += f"   {generated:>14,.0f}  {generated / (step.batch_size * steps_per_s):>7.1f}x"
        print(line, flush=True)


if __name__ == "__main__":
    main()
