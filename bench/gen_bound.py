"""Benchmark: what bounds graphgen's generator on a CPU (issue #15: why not 30x a networkx loop).

Run (repository root):  python -m bench.gen_bound [--sizes 16,64] [--seconds 2]

For each n and family, on the generator's own batches (bench/gen.py's batch sizes), side by side in one run:
- the whole generator (`sample_examples`), examples/s;
- its parts replayed on the same graphs: the three single-source BFS passes it runs per example (from a random
  root, from s, from t) and the component labelling of `linking_edges`, each a vmapped while loop;
- the vmapped-loop inflation: a loop over a batch runs as many levels as its slowest graph, so the work is
  (batch max of BFS levels) / (mean BFS levels) times what each graph needs on its own.
"""

import argparse
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from bench.gen import batch_size, refuse_sizes
from bench.steps import rate
from common.cli import Parser, positive_ints
from graphgen import family_names, sample_examples
from graphgen.bfs import bfs, component_roots


def seconds_per_call(fn, *args, seconds: float) -> float:
    return 1 / rate(lambda i: fn(*args), seconds)


def measure(n: int, name: str, seconds: float) -> dict:
    """The generator's rate on one family at size n, the time shares of its BFS passes and labelling (replayed on
    the same graphs), and the BFS levels per graph, mean and batch max."""
    batch = batch_size(n)
    keys, sizes = jax.random.split(jax.random.key(0), batch), jnp.full((batch,), n)
    generate = partial(sample_examples, family=name, n_pad=n, vocab=n)
    whole = seconds_per_call(generate, keys, sizes, seconds=seconds)
    made = generate(keys, sizes)
    edges, mask = made.edges - 1, made.edge_mask  # ids 1..n back to local indices (vocab = n)
    sources = jnp.stack([made.s, made.t, made.s], axis=1) - 1  # three BFS per graph, as the generator runs
    three_bfs = jax.jit(jax.vmap(lambda e, m, s: [bfs(e, m, n, s[i])[0] for i in range(3)]))  # one after another
    labelling = jax.jit(jax.vmap(partial(component_roots, n_pad=n)))
    levels = np.asarray(made.dist_s).max(1) + 1
    return {
        "rate": batch / whole,
        "bfs": seconds_per_call(three_bfs, edges, mask, sources, seconds=seconds) / whole,
        "labelling": seconds_per_call(labelling, edges, mask, seconds=seconds) / whole,
        "levels": (levels.mean(), levels.max()),
    }


def main() -> None:
    parser = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=positive_ints, default=[16, 64], help="comma-separated graph sizes n")
    parser.add_argument("--seconds", type=float, default=2.0, help="minimum time per measurement")
    args = parser.parse_args()
    refuse_sizes(parser.prog, args.sizes)
    print(f"jax {jax.__version__} on {jax.devices()[0]}")
    print("n    family        generator ex/s   3 BFS share   labelling share   BFS levels mean / batch max")
    for n in args.sizes:
        for name in family_names():
            m = measure(n, name, args.seconds)
            mean, top = m["levels"]
            print(
                f"{n:<4d} {name:<13s} {m['rate']:>14,.0f}   {m['bfs']:>10.0%}   {m['labelling']:>14.0%}"
                f"   {mean:>10.1f} / {top} ({top / mean:.1f}x)",
                flush=True,
            )


if __name__ == "__main__":
    main()
