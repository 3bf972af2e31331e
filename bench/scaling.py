"""Benchmark: how generation time and train-step time grow with graph size n.

Run (repository root):  python -m bench.scaling [--sizes 16,32,64,128,256] [--batch 8] [--dtype float32]

The default sizes stop at 128 to keep the run short on a CPU (n = 256 takes ~23 s per step at batch 8).

For each n, the quick preset's model and data settings with N = n_pad = vocab = n (graphs of sizes 4..n,
padded to n, ids 1..n; the graph encoder iterates n times over n vertex tokens), at a fixed batch (--batch,
default 8 examples), side by side in one run:
- generation: seconds per batch of graphgen sample_batch (with data.pool = 8: 8 x batch examples drawn);
- train step: seconds per pretraining step (encoder + d(s,t) head, forward, backward, AdamW) on a fixed
  batch, so without generation, twice: the graph encoder (`graph`, its attention dense over every vocab x
  vocab pair, masked to the adjacency + self) and the same function over the edge list (`graph-sparse`).
Prints a table with the growth exponents between consecutive sizes and writes bench/scaling.png (log-log).
"""

import argparse
import dataclasses
import math
from pathlib import Path

import jax
import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from bench.steps import bench_config, machine, pretrain_step, rate  # noqa: E402
from common.cli import Parser, UsageError, enable_compilation_cache, fail, positive_ints  # noqa: E402
from configs import PRESETS
from experiment.phases import batch_sampler  # noqa: E402

ENCODERS = ("graph", "graph-sparse")  # the step of each, in this order


def config(n: int, batch: int, dtype: str, encoder: str = "graph"):
    cfg = bench_config(PRESETS["quick"], dtype)
    data = dataclasses.replace(cfg.data, n_max=n, n_report=n - 1, vocab=n, eval_beyond=0)
    model = dataclasses.replace(cfg.model, encoder=encoder)
    return dataclasses.replace(
        cfg, data=data, model=model, pretrain=dataclasses.replace(cfg.pretrain, batch_size=batch)
    )


def times(n: int, batch: int, dtype: str, seconds: float) -> tuple[float, ...]:
    """Seconds per generated batch, then per train step (fixed batch) of each of ENCODERS, at graph size n."""
    cfg = config(n, batch, dtype)
    draw = jax.jit(batch_sampler(cfg, n, pool=cfg.data.pool), static_argnums=1)
    generate = 1 / rate(lambda i: draw(jax.random.fold_in(jax.random.key(0), i), batch), seconds)
    fixed = draw(jax.random.key(1), batch)
    steps = [pretrain_step(config(n, batch, dtype, e), sample=lambda key, batch_size: fixed) for e in ENCODERS]
    return generate, *(1 / rate(step.run, seconds) for step in steps)


def main() -> None:
    parser = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--sizes",
        type=positive_ints,
        default=[16, 32, 64, 128],
        help="comma-separated graph sizes n (256: +4 min on CPU)",
    )
    parser.add_argument("--batch", type=int, default=8, help="examples per batch, the same at every n")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--seconds", type=float, default=1.0, help="minimum time per measurement")
    parser.add_argument("--plot", type=Path, default=Path(__file__).with_name("scaling.png"))
    args = parser.parse_args()
    for n in args.sizes:  # every size's arrays checked before the first compiles
        try:
            config(n, args.batch, args.dtype).check_memory()
        except UsageError as e:
            fail(parser.prog, f"--sizes {n}: {e}")
    enable_compilation_cache()

    print(f"machine: {machine()}")
    print(f"batch {args.batch}, dtype {args.dtype}; exponent k: time grows as n^k from the previous size")
    print(
        f"{'n':>5} {'generate s/batch':>17} {'k':>5} {'graph step s':>13} {'k':>5} {'graph-sparse step s':>20}"
        f" {'k':>5} {'graph/sparse':>13} {'graph/generate':>15}"
    )
    results = []
    for i, n in enumerate(args.sizes):
        result = times(n, args.batch, args.dtype, args.seconds)
        ks = [""] * len(result)
        if i:
            growth = math.log(n / args.sizes[i - 1])
            ks = [f"{math.log(now / then) / growth:.2f}" for now, then in zip(result, results[-1], strict=True)]
        results.append(result)
        (gen, dense, sparse), (k_gen, k_dense, k_sparse) = result, ks
        print(
            f"{n:>5} {gen:>17.4f} {k_gen:>5} {dense:>13.4f} {k_dense:>5} {sparse:>20.4f} {k_sparse:>5}"
            f" {dense / sparse:>13.2f} {dense / gen:>15.1f}",
            flush=True,
        )

    plot(args.sizes, results, args.batch, f"{jax.devices()[0].device_kind}, {args.dtype}", args.plot)
    print(f"plot: {args.plot}")


def plot(sizes: list[int], results: list[tuple[float, ...]], batch: int, title: str, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.loglog(sizes, [r[0] for r in results], "o-", label=f"generate a batch (pool 8 x {batch})")
    for i, (encoder, style) in enumerate(zip(ENCODERS, ("s-", "s--"), strict=True), start=1):
        ax.loglog(sizes, [r[i] for r in results], style, label=f"train step on a fixed batch, {encoder}")
    ax.set_xlabel("graph size n (= padding = vocab)")
    ax.set_ylabel(f"seconds per batch of {batch}")
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xticks(sizes, [str(n) for n in sizes])
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
