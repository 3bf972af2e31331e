"""python -m graphgen {families, export}: list graph families or export a fixed dataset as `.npz`."""

import argparse
import sys
from pathlib import Path

from common.cli import Parser, enable_compilation_cache, fail, positive_int, size_range
from graphgen.sample import family_names


def main(argv: list[str] | None = None) -> None:
    parser = Parser(prog="python -m graphgen", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    commands.add_parser("families", help="list the graph families, one per line")
    export = commands.add_parser(
        "export",
        help="write a dataset in the data contract of docs/design.md",
        description="Writes COUNT examples to an .npz file; the same arguments give a byte-identical file.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    export.add_argument("--family", required=True, help="a family name, a comma-separated list, or 'all'")
    export.add_argument("--sizes", required=True, type=size_range, help="graph sizes A:B (vertices), A >= 2")
    export.add_argument("--count", required=True, type=positive_int, help="number of examples")
    export.add_argument("--seed", type=int, default=0, help="random seed")
    export.add_argument("--vocab", type=positive_int, help="vertex ids are drawn from 1..VOCAB (default: B)")
    export.add_argument("--out", required=True, type=Path, help="output .npz file")
    args = parser.parse_args(argv)

    if args.command == "families":
        print("\n".join(family_names()))
        return

    families = family_names() if args.family == "all" else args.family.split(",")
    unknown = [f for f in families if f not in family_names()]
    if unknown:
        fail(parser.prog, f"unknown family '{unknown[0]}' (choose from: {', '.join(family_names())}, all)")
    lo, hi = args.sizes
    vocab = args.vocab or hi
    if vocab < hi:
        fail(parser.prog, f"--vocab {vocab} is smaller than the largest size {hi}")
    if not args.out.parent.is_dir():
        fail(parser.prog, f"cannot write {args.out}: directory {args.out.parent} does not exist")

    from graphgen.dataset import generate, save  # imports jax: keep `families` and errors instant
    from graphgen.memory import TooLarge

    enable_compilation_cache()
    try:
        arrays = generate(args.seed, families, (lo, hi), args.count, vocab)
    except TooLarge as e:
        fail(parser.prog, f"--sizes {lo}:{hi} --count {args.count}: {e}")
    try:
        save(args.out, arrays)
    except OSError as e:
        fail(parser.prog, f"cannot write {args.out}: {e.strerror or e}")
    print(f"wrote {args.count} examples to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
