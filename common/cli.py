"""Command-line plumbing shared by every pathprobe command: bad input is one line on stderr and exit 2."""

import argparse
import sys
from typing import NoReturn


class UsageError(Exception):
    """Bad input from the user; its message is printed as one line and the command exits with status 2."""


def fail(prog: str, message: str) -> NoReturn:
    print(f"{prog}: error: {message}", file=sys.stderr)
    sys.exit(2)


class Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line (no usage dump) with exit status 2."""

    def error(self, message: str) -> NoReturn:
        fail(self.prog, message)


def add_plots_option(parser: argparse.ArgumentParser) -> None:
    """--plots / --no-plots, shared by the commands that write a results directory."""
    parser.add_argument(
        "--plots",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="draw the figures (default); --no-plots writes summary.json and metrics.csv only, sooner, and removes "
        "the figures of an earlier evaluation there (eval.py --run RUN draws them later)",
    )


def size_range(text: str) -> tuple[int, int]:
    """Parses 'A:B' (or a single 'A') into an inclusive range of graph sizes, 2 <= A <= B."""
    try:
        lo, _, hi = text.partition(":")
        lo, hi = int(lo), int(hi or lo)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a size range A:B of whole numbers") from None
    if lo < 2:
        raise argparse.ArgumentTypeError(f"sizes must be at least 2, got {lo}")
    if lo > hi:
        raise argparse.ArgumentTypeError(f"empty size range {lo}:{hi} (A > B)")
    return lo, hi


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def positive_ints(text: str) -> list[int]:
    """A comma-separated list of positive whole numbers (an argparse type), e.g. '16,64'."""
    return [positive_int(part) for part in text.split(",")]


def enable_compilation_cache() -> None:
    """Keeps compiled XLA programs on disk between runs (the generator's take seconds each to compile).
    Location: $PATHPROBE_CACHE, default ~/.cache/pathprobe/jax; programs that compile in under
    $PATHPROBE_CACHE_MIN_SECS (default 0.5) are not kept."""
    import os

    import jax

    default = os.path.join(os.path.expanduser("~"), ".cache", "pathprobe", "jax")
    jax.config.update("jax_compilation_cache_dir", os.environ.get("PATHPROBE_CACHE", default))
    jax.config.update(
        "jax_persistent_cache_min_compile_time_secs", float(os.environ.get("PATHPROBE_CACHE_MIN_SECS", 0.5))
    )
