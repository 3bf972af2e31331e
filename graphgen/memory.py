"""How much memory the generator needs, and how much there is: sizes that cannot fit are refused up front with a
one-line error naming the limit, instead of failing minutes later with an out-of-memory traceback.

Generation works on dense (n_pad, n_pad) arrays per graph (a family's adjacency, the candidate pairs, distance
matrices), so its memory grows with n_pad^2. XLA's own accounting of the compiled generator
(`memory_analysis`, checked in tests/test_memory.py) is at most BYTES_PER_SLOT bytes per graph and n_pad^2
plus BYTES_PER_VERTEX per vertex (edge lists, BFS state) for every family; per n_pad^2 it falls from ~41 at
n_pad = 8 to ~18 at 256 for erdos_renyi, the largest, and towards 6 for the others. Each graph also draws its
vertex ids as a permutation of 1..vocab (~20 bytes per id), so a large vocab alone can exhaust memory.

Every command that takes sizes checks its largest size here before it compiles anything (`refuse_unless_fits`),
however few graphs it would draw: a size that cannot be drawn is refused, never attempted.
"""

import math
import os

import jax

BYTES_PER_SLOT = 24  # generator bytes per graph per n_pad^2 (an upper bound, see the module docstring)
BYTES_PER_VERTEX = 160  # and per vertex
BYTES_PER_ID = 24  # and per vertex id 1..vocab (the permutation its ids are drawn from; XLA: ~20)


def generator_bytes(count: int, n_pad: int, vocab: int) -> int:
    """Bytes the generator's arrays take to draw `count` graphs padded to `n_pad` vertices, ids in 1..vocab."""
    return count * (BYTES_PER_SLOT * n_pad * n_pad + BYTES_PER_VERTEX * n_pad + BYTES_PER_ID * vocab)


def memory_budget() -> int:
    """Bytes one device can hold: an accelerator's memory limit, else the host's available memory shared by
    its CPU devices."""
    device = jax.local_devices()[0]
    stats = device.memory_stats() if device.platform != "cpu" else None
    if stats and "bytes_limit" in stats:
        return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
    return host_memory() // jax.local_device_count()


def host_memory() -> int:
    """Bytes of host memory available now (MemAvailable; the physical memory where /proc is missing)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def largest_pad(count: int, budget: int, vocab: int) -> int:
    """The largest n_pad at which `count` graphs with ids in 1..vocab fit in `budget` bytes (0: none)."""
    n_pad = math.isqrt(max(budget // count - BYTES_PER_ID * vocab, 0) // BYTES_PER_SLOT)
    while n_pad > 0 and generator_bytes(count, n_pad, vocab) > budget:
        n_pad -= 1
    return n_pad


def gigabytes(n: int) -> str:
    return f"{n / 1e9:.3g} GB"


class TooLarge(ValueError):
    """Sizes whose arrays do not fit in memory; the message (one line) names the limit."""


def refuse_unless_fits(count: int, n_pad: int, vocab: int, budget: int) -> None:
    """TooLarge (one line naming the largest size that fits) unless `count` graphs padded to `n_pad` vertices,
    ids in 1..vocab, can be drawn at once within `budget` bytes."""
    if (need := generator_bytes(count, n_pad, vocab)) <= budget:
        return
    graphs = "graphs" if count == 1 else f"{count} graphs drawn at once"
    largest = largest_pad(count, budget, vocab)
    limit = f"the largest size that fits is {largest}" if largest >= 2 else f"no size fits with ids up to {vocab}"
    raise TooLarge(
        f"{graphs} of {n_pad} vertices (ids 1..{vocab}) need about {gigabytes(need)}"
        f"{' each' if count == 1 else ''} to generate, and this device has {gigabytes(budget)}: {limit}"
    )


def rows_per_call(n_pad: int, most: int, budget: int, vocab: int) -> int:
    """The most graphs (a power of two, at most `most`) the generator may draw at once at `n_pad`, ids in
    1..vocab, within `budget` bytes; TooLarge if not even one fits."""
    refuse_unless_fits(1, n_pad, vocab, budget)
    rows = min(most, budget // generator_bytes(1, n_pad, vocab))
    return 1 << (rows.bit_length() - 1)


def square_bytes(count: int, vocab: int) -> int:
    """Bytes of the dense (vocab + 1)^2 boolean adjacency of `count` graphs over ids 0..vocab
    (models.model.adjacency: the consistency checks and the graph encoder build one per graph)."""
    return count * (vocab + 1) ** 2


def largest_square(count: int, budget: int) -> int:
    """The largest vocab whose adjacency of `count` graphs fits in `budget` bytes."""
    return max(math.isqrt(budget // count) - 1, 0)
