"""Benchmark: a seed sweep trained as one vmapped program vs the seeds one after another.

Run (repository root):  python -m bench.seeds [--preset quick|paper] [--dtype float32|bfloat16] [--seeds 8]
                        [--draw-ahead K]

At the preset's shapes, side by side in one run: examples/s of the `frozen` fine-tuning step (what the
sweep over seeds repeats) for one seed, which is also the throughput of K seeds run one after another, and
for K seeds vmapped into one step (make_train_step(..., seeds=K): K parameter copies and data streams, the
frozen encoder shared), and their ratio. A vmapped sweep pays off where one seed leaves the device idle
(an accelerator at small batch); a CPU that one seed already keeps busy gains little.
"""

import argparse

from bench.steps import bench_config, finetune_step, machine, pretrain_step, rate
from common.cli import Parser, enable_compilation_cache, positive_int
from configs import PRESETS


def main() -> None:
    parser = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="quick", choices=["quick", "paper"])
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--seeds", type=int, default=8, help="K, seeds in the vmapped step")
    parser.add_argument("--draw-ahead", type=positive_int, help="batches per generator call (default: the preset's)")
    parser.add_argument("--phase", default="finetune", choices=["finetune", "pretrain"])
    parser.add_argument("--seconds", type=float, default=5.0, help="minimum time per measurement")
    args = parser.parse_args()
    enable_compilation_cache()

    cfg = bench_config(PRESETS[args.preset], args.dtype, args.draw_ahead)
    make = finetune_step if args.phase == "finetune" else pretrain_step
    print(f"machine: {machine()}")
    ahead = (cfg.finetune if args.phase == "finetune" else cfg.pretrain).draw_ahead
    print(f"preset {args.preset}, dtype {args.dtype}, {args.phase} step, K = {args.seeds}, draw ahead {ahead}")
    one, many = make(cfg), make(cfg, seeds=args.seeds)
    single = one.batch_size * rate(one.run, args.seconds)
    vmapped = many.batch_size * rate(many.run, args.seconds)
    print(f"one seed at a time: {single:>10,.0f} examples/s (K seeds one after another: the same)")
    print(f"K={args.seeds} seeds vmapped: {vmapped:>10,.0f} examples/s")
    print(f"ratio vmapped / one at a time: {vmapped / single:.2f}x (target on a GPU: >= {0.8 * args.seeds:.1f}x)")


if __name__ == "__main__":
    main()
