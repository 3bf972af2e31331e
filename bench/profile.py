"""Benchmark: where a train step's device time goes, op by op (a profiler trace, read back in the same run).

Run (repository root):  python -m bench.profile [--preset quick|paper] [--dtype float32|bfloat16]
                        [--phase pretrain|finetune] [--draw-ahead K] [--steps 5] [--top 15]

Traces `--steps` steps of the pretraining or the `frozen` fine-tuning step (bench/steps.py, compiled before the
trace) with jax.profiler, then sums each XLA op's time over the trace and prints the ops that take the most,
with their share of all op time and, where the profiler records it, the op's HLO text: a slow op of one dtype
shows up here by name (a scatter, a convert, a copy). On an accelerator it reads the device's op events; on
a CPU the XLA worker threads' events, which name fusions less helpfully.
"""

import argparse
import collections
import glob
import tempfile

import jax

from bench.steps import bench_config, finetune_step, machine, pretrain_step
from common.cli import Parser, enable_compilation_cache, positive_int
from configs import PRESETS

WRAPPERS = ("ThunkExecutor", "ThreadpoolListener")  # CPU events that enclose the ops, not ops


def op_times(trace: str) -> tuple[collections.Counter, collections.Counter, dict]:
    """Per op name in the trace file: total ns, calls, and the HLO text of one call (if recorded)."""
    profile = jax.profiler.ProfileData.from_file(trace)
    devices = [p for p in profile.planes if p.name.startswith("/device:") and "CUSTOM" not in p.name]
    if devices:
        lines = [line for p in devices for line in p.lines if line.name == "XLA Ops"]
        lines = lines or [line for p in devices for line in p.lines if line.name.startswith("Stream")]
    else:
        host = profile.find_plane_with_name("/host:CPU")
        lines = [line for line in host.lines if line.name.startswith("tf_XLA")]
    total, calls, text = collections.Counter(), collections.Counter(), {}
    for line in lines:
        for event in line.events:
            if event.name.startswith(WRAPPERS):
                continue
            total[event.name] += event.duration_ns
            calls[event.name] += 1
            if event.name not in text:
                stats = dict(event.stats)
                text[event.name] = str(stats.get("long_name") or stats.get("hlo_op") or "")
    return total, calls, text


def main() -> None:
    parser = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="quick", choices=["quick", "paper"])
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--phase", default="pretrain", choices=["pretrain", "finetune"])
    parser.add_argument("--draw-ahead", type=positive_int, help="batches per generator call (default: the preset's)")
    parser.add_argument("--steps", type=positive_int, default=5, help="steps traced")
    parser.add_argument("--top", type=positive_int, default=15, help="ops listed")
    args = parser.parse_args()
    enable_compilation_cache()

    cfg = bench_config(PRESETS[args.preset], args.dtype, args.draw_ahead)
    step = (pretrain_step if args.phase == "pretrain" else finetune_step)(cfg)
    print(f"machine: {machine()}")
    print(f"preset {args.preset}, dtype {args.dtype}, {args.phase} step, {args.steps} steps traced")
    jax.block_until_ready(step.run(0))  # compiled outside the trace
    with tempfile.TemporaryDirectory() as directory:
        with jax.profiler.trace(directory):
            for i in range(1, args.steps + 1):
                jax.block_until_ready(step.run(i))
        total, calls, text = op_times(sorted(glob.glob(f"{directory}/**/*.xplane.pb", recursive=True))[-1])
    whole = sum(total.values())
    print(f"op time {whole / 1e6 / args.steps:.2f} ms per step")
    print(f"{'op':<40} {'calls/step':>10} {'ms/step':>8} {'share':>6}  HLO")
    for name, ns in total.most_common(args.top):
        hlo = " ".join(text[name].split())[:110]
        per_step = f"{calls[name] / args.steps:>10.0f} {ns / 1e6 / args.steps:>8.3f}"
        print(f"{name[:40]:<40} {per_step} {ns / whole:>6.1%}  {hlo}")


if __name__ == "__main__":
    main()
