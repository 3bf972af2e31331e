"""How much memory the generator needs, and how much there is: sizes that cannot fit are refused up front with a
one-line error naming the limit, instead of failing minutes later with an out-of-memory traceback.

Generation works on dense (n_pad, n_pad) arrays per graph (a family's adjacency, the candidate pairs, distance
matrices), so its memory grows with n_pad^2. XLA's own accounting of the compiled generator
(`memory_analysis`, checked in tests/test_memory.py) is at most BYTES_PER_SLOT bytes per graph and n_pad^2
plus BYTES_PER_VERTEX per vertex (edge lists, BFS state) for every family; per n_pad^2 it falls from ~41 at
n_pad = 8 to ~18 at 256 for erdos_renyi, the largest, and towards 6 for the others.
"""

import math
import os

import jax

BYTES_PER_SLOT = 24  # generator bytes per graph per n_pad^2 (an upper bound, see the module docstring)
BYTES_PER_VERTEX = 160  # and per vertex


def generator_bytes(count: int, n_pad: int) -> int:
    """Bytes the generator's arrays take to draw `count` graphs padded to `n_pad` vertices at once."""
    return count * (BYTES_PER_SLOT * n_pad * n_pad + BYTES_PER_VERTEX * n_pad)


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


def largest_pad(count: int, budget: int) -> int:
    """The largest n_pad at which `count` graphs fit in `budget` bytes."""
    n_pad = math.isqrt(budget // (BYTES_PER_SLOT * count))
    while n_pad > 0 and generator_bytes(count, n_pad) > budget:
        n_pad -= 1
    return n_pad


def gigabytes(n: int) -> str:
    return f"{n / 1e9:.3g} GB"


class TooLarge(ValueError):
    """Sizes whose arrays do not fit in memory; the message (one line) names the limit."""


def rows_per_call(n_pad: int, most: int, budget: int) -> int:
    """The most graphs (a power of two, at most `most`) the generator may draw at once at `n_pad` within
    `budget` bytes; TooLarge if not even one fits."""
    if generator_bytes(1, n_pad) > budget:
        raise TooLarge(
            f"graphs of {n_pad} vertices need about {gigabytes(generator_bytes(1, n_pad))} each to generate, and "
            f"this device has {gigabytes(budget)}: the largest size that fits is {largest_pad(1, budget)}"
        )
    rows = min(most, budget // generator_bytes(1, n_pad))
    return 1 << (rows.bit_length() - 1)
