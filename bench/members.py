"""Benchmark: the fine-tuning of a preset's frozen-encoder variants as members of shared programs vs one
variant at a time.

Run (repository root):  python -m bench.members [--preset quick|paper] [--dtype float32|bfloat16] [--steps 200]

Side by side in one run, each from cold in-process caches (compilation included, as train.py meets it): the
wall-clock seconds of experiment.phases.finetune over the preset's variants that do not train the encoder,
(a) all at once, where variants drawing the same batches train as members of one program that encodes each
batch once (what train.py does), and (b) one variant at a time, each encoding every batch itself (what it did
before). Both train the same numbers (tests/test_members.py); the encoder's parameters are a fresh model's,
which changes the time of no step. `--steps` shortens fine-tuning (default: the preset's steps).
"""

import argparse
import tempfile
import time
from pathlib import Path

import jax
from flax import nnx

from bench.steps import bench_config, machine
from common.cli import Parser, positive_int
from configs import PRESETS
from experiment.phases import finetune, member_groups
from experiment.rundir import new_model
from models.objectives import PRETRAINED, variant


def seconds(run) -> float:
    jax.clear_caches()
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main() -> None:
    parser = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="quick", choices=["quick", "paper"])
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--steps", type=positive_int, help="fine-tuning steps per variant (default: the preset's)")
    args = parser.parse_args()

    cfg = bench_config(PRESETS[args.preset], args.dtype)
    if args.steps:
        cfg = cfg.replace(finetune={"steps": args.steps, "checkpoint_every": args.steps})
    names = [name for name in cfg.experiment.variant_list() if not variant(name).train_encoder]
    pretrained = nnx.state(new_model(cfg, cfg.pretrain.seed), PRETRAINED)
    with tempfile.TemporaryDirectory() as scratch:
        groups = member_groups(cfg, Path(scratch), names)
        together = seconds(lambda: finetune(cfg, Path(scratch) / "together", names, pretrained))
        alone = seconds(lambda: [finetune(cfg, Path(scratch) / "alone", [name], pretrained) for name in names])
    seeds = f"{cfg.experiment.seeds} seeds " + ("vmapped" if cfg.experiment.vmap_seeds else "one after another")
    print(f"machine: {machine()}")
    print(f"preset {args.preset}, dtype {args.dtype}, {cfg.finetune.steps} steps x {seeds}, {len(names)} variants")
    print(f"members: {' | '.join(', '.join(group) for group in groups)}")
    print(f"members of {len(groups)} programs: {together:8.1f} s")
    print(f"one variant at a time:    {alone:8.1f} s")
    print(f"ratio one at a time / members: {alone / together:.2f}x")


if __name__ == "__main__":
    main()
