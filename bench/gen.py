"""Benchmark: examples/second of graphgen's JAX generator vs a plain networkx loop doing the same sampling.

Run:  python bench/gen.py [--sizes 16,64,256] [--seconds 3]

For each n it times both generators over the five families in equal shares and prints examples/s and their
ratio. One example = a connected graph of the family on n vertices, a source s (random, or farthest from a
random vertex half the time), a distance drawn uniformly among those at which some t has a unique shortest
path from s, such a t, its path, random vertex ids in 1..n and a padded, shuffled edge list.

- graphgen: `sample_examples` on jax.devices()[0], one jitted call of B examples per family, compile time
  excluded (one warm-up call per family with another key), then fresh keys until --seconds have passed.
- networkx: the per-example Python loop a user would write (networkx graph generators, BFS distances,
  `all_shortest_paths` to test uniqueness, numpy padding), single-threaded, --seconds per family.
"""

import argparse
import itertools
import math
import os
import platform
import random
import time

import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np

from common.cli import Parser, fail, positive_ints
from graphgen import edge_capacity, family_names, sample_examples
from graphgen.memory import TooLarge, memory_budget, refuse_unless_fits

BATCH = {16: 4096, 64: 2048, 256: 256}


def batch_size(n: int) -> int:
    """Graphs per generator call at size n: BATCH, else about 65,536 vertices' worth (at least 64)."""
    return BATCH.get(n, max(64, 65536 // n))


def refuse_sizes(prog: str, sizes: list[int]) -> None:
    """One line and exit 2 for a size whose batch of graphs (ids 1..n) cannot be drawn on this device, before
    anything compiles: never an out-of-memory traceback."""
    budget = memory_budget()
    for n in sizes:
        try:
            refuse_unless_fits(batch_size(n), n, n, budget)
        except TooLarge as e:
            fail(prog, f"--sizes {n}: {e}")


def graphgen_rate(n: int, seconds: float) -> float:
    """Examples/s of `sample_examples` over all families (equal counts), compile time excluded."""
    batch = batch_size(n)
    sizes = jnp.full((batch,), n)
    base = jax.random.key(0)

    def run(i: int, name: str) -> None:
        keys = jax.random.split(jax.random.fold_in(base, i), batch)
        jax.block_until_ready(sample_examples(keys, sizes, family=name, n_pad=n, vocab=n))

    for name in family_names():
        run(0, name)  # compile
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for name in family_names():
            calls += 1
            run(calls, name)
    return calls * batch / (time.perf_counter() - start)


def connect(rng: random.Random, g: nx.Graph) -> nx.Graph:
    """Link each component after the first to a random vertex of the earlier ones."""
    components = [list(c) for c in nx.connected_components(g)]
    seen = components[0]
    for comp in components[1:]:
        g.add_edge(rng.choice(comp), rng.choice(seen))
        seen = seen + comp
    return g


def nx_graph(rng: random.Random, family: str, n: int) -> nx.Graph:
    """A connected graph of `family` on vertices 0..n-1, drawn like graphgen.families."""
    if family == "erdos_renyi":
        g = nx.gnp_random_graph(n, rng.uniform(1.2, 2.5) / n, seed=rng)
    elif family == "tree_plus":
        w = rng.randint(1, 4)
        g = nx.empty_graph(n)
        g.add_edges_from((v, max(v - 1 - rng.randrange(w), 0)) for v in range(1, n))
        extra = ((rng.randrange(n), rng.randrange(n)) for _ in range(rng.randrange(n // 8 + 2)))
        g.add_edges_from((a, b) for a, b in extra if a != b)
    elif family == "grid_holes":
        side = math.ceil(math.sqrt(n / (1 - rng.uniform(0.10, 0.25))))
        grid = nx.grid_2d_graph(side, side)
        g = nx.convert_node_labels_to_integers(grid.subgraph(rng.sample(list(grid), n)))
    elif family == "geometric":
        g = nx.random_geometric_graph(n, math.sqrt(rng.uniform(2.0, 3.5) / (math.pi * n)), seed=rng)
    elif family == "small_world":
        g = nx.watts_strogatz_graph(n, 4, rng.uniform(0.02, 0.15), seed=rng)
    else:
        raise ValueError(family)
    return connect(rng, g)


def has_unique_path(g: nx.Graph, s: int, t: int) -> bool:
    return len(list(itertools.islice(nx.all_shortest_paths(g, s, t), 2))) == 1


def nx_example(rng: random.Random, family: str, n: int) -> tuple[np.ndarray, ...]:
    """One example as numpy arrays: (edges, edge_mask, s, t, d_st, path), with ids in 1..n."""
    e_cap = edge_capacity(n)
    g = nx_graph(rng, family, n)
    while g.number_of_edges() > e_cap:  # graphgen redraws such graphs too
        g = nx_graph(rng, family, n)

    s = rng.randrange(n)
    if rng.random() < 0.5:
        dist = nx.single_source_shortest_path_length(g, s)
        s = rng.choice([v for v, d in dist.items() if d == max(dist.values())])
    dist = nx.single_source_shortest_path_length(g, s)
    # A uniform distance among those with a uniquely reachable t, then a uniform such t at that distance.
    distances = sorted(set(dist.values()) - {0})
    t = None
    while t is None:
        d = distances.pop(rng.randrange(len(distances)))
        candidates = [v for v, dv in dist.items() if dv == d]
        rng.shuffle(candidates)
        t = next((v for v in candidates if has_unique_path(g, s, v)), None)
    path = nx.shortest_path(g, s, t)

    ids = np.array(rng.sample(range(1, n + 1), n), np.int32)
    edge_list = list(g.edges)
    rng.shuffle(edge_list)
    edges = np.zeros((e_cap, 2), np.int32)
    edges[: len(edge_list)] = ids[np.array(edge_list)]
    path_ids = np.zeros(n, np.int32)
    path_ids[: len(path)] = ids[path]
    return edges, np.arange(e_cap) < len(edge_list), ids[s], ids[t], np.int32(d), path_ids


def networkx_rate(n: int, seconds: float) -> float:
    """Examples/s of the networkx loop, each family timed for `seconds`, weighted to equal counts."""
    rng = random.Random(0)
    per_example = []
    for name in family_names():
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            nx_example(rng, name, n)
            count += 1
        per_example.append((time.perf_counter() - start) / count)
    return 1 / np.mean(per_example)


def main() -> None:
    parser = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=positive_ints, default=[16, 64, 256], help="comma-separated graph sizes n")
    parser.add_argument("--seconds", type=float, default=3.0, help="minimum time per measurement")
    args = parser.parse_args()
    refuse_sizes(parser.prog, args.sizes)

    device = jax.devices()[0]
    cpu = platform.processor() or platform.machine()
    print(f"machine: {cpu}, {os.cpu_count()} CPUs; jax {jax.__version__} on {device} ({device.device_kind})")
    print(f"networkx {nx.__version__}; families: {', '.join(family_names())}")
    for n in args.sizes:
        ours, theirs = graphgen_rate(n, args.seconds), networkx_rate(n, args.seconds)
        rates = f"graphgen {ours:>10,.0f} ex/s   networkx {theirs:>7,.0f} ex/s"
        print(f"n={n:<4d} {rates}   ratio {ours / theirs:,.0f}x", flush=True)


if __name__ == "__main__":
    main()
