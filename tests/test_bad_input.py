"""Bad input to every command: exactly one line on stderr naming the problem, exit code 2, no traceback,
nothing written. Each case changes one thing in otherwise valid arguments (the tiny preset, which
`finished_run` runs; the export arguments, which test_dataset_cli runs).

The table calls each command's main() in this process: almost every case fails in argument or config
validation, before any compilation, and a process per case would cost seconds each. A few cases also run in
a real process, where anything else a library prints to stderr would show."""

import argparse
import importlib
import subprocess
import sys

import pytest

import eval as evaluation
import train
from common.cli import positive_ints
from graphgen import __main__ as graphgen_cli

MAINS = {"train.py": train.main, "eval.py": evaluation.main, "graphgen": graphgen_cli.main}
TRAIN = ["--preset", "tiny", "--run-dir", "{tmp}/run", "--results-dir", "{tmp}/results"]
EVAL = ["--results", "{tmp}/results"]
EXPORT = ["export", "--family", "tree_plus", "--sizes", "2:4", "--count", "4", "--out", "{tmp}/x.npz"]
ISSUE_35 = ["export", "--family", "erdos_renyi", "--sizes", "8:100000000", "--count", "10", "--out", "{tmp}/x.npz"]


def replaced(argv: list[str], option: str, value: str) -> list[str]:
    i = argv.index(option)
    return [*argv[: i + 1], value, *argv[i + 2 :]]


CASES = [
    # train.py: unknown names
    ("train.py", replaced(TRAIN, "--preset", "huge"), "unknown preset 'huge'"),
    ("train.py", [*TRAIN, "--model.depth", "3"], "unrecognized arguments: --model.depth"),
    ("train.py", [*TRAIN, "--data.families", "tree_plus,hypercube"], "unknown family 'hypercube'"),
    ("train.py", [*TRAIN, "--model.encoder", "rnn"], "model.encoder must be one of"),
    ("train.py", [*TRAIN, "--experiment.variants", "frozen,honest"], "unknown variant 'honest'"),
    ("train.py", [*TRAIN, "--experiment.variants", "frozen@honesty"], "unknown consistency condition 'honesty'"),
    ("train.py", [*TRAIN, "--experiment.variants", "frozen@range=lots"], "'lots' of 'range' in"),
    ("train.py", [*TRAIN, "--sweep", "everything"], "unknown sweep 'everything'"),
    ("train.py", [*TRAIN, "--sweep", "columns", "--data.families", "tree_plus"], "needs two or more"),
    ("train.py", [*TRAIN, "--data.split", "ages"], "unknown split 'ages'"),
    ("train.py", [*TRAIN, "--data.split", "family:grid_holes"], "'grid_holes' is not in data.families"),
    ("train.py", [*TRAIN, "--data.split", "family:tree_plus:small_world+tree_plus"], "cannot be labelled too"),
    ("train.py", [*TRAIN, "--data.split", "distance:0"], "distance:K needs a whole number K >= 1"),
    ("train.py", [*TRAIN, "--experiment.variants", "frozen~offpath:3"], "takes no argument"),
    ("train.py", [*TRAIN, "--experiment.variants", "frozen~family:geometric"], "'geometric' is not in data.families"),
    ("train.py", [*TRAIN, "--data.overseer", "human"], "unknown overseer 'human'"),
    ("train.py", [*TRAIN, "--data.overseer", "saturate", "--data.split", "distance:2"], "data.overseer needs"),
    ("train.py", [*TRAIN, "--data.overseer", "saturate", "--experiment.variants", "frozen~distance:2"], "of its own"),
    ("train.py", [*TRAIN, "--sweep", "overseer"], "the overseer sweep needs --data.overseer"),
    ("train.py", [*TRAIN, "--experiment.variants", "frozen:warm-overseer"], "starts from the overseer's question"),
    # train.py: wrong types
    ("train.py", [*TRAIN, "--pretrain.steps", "many"], "invalid int value: 'many'"),
    ("train.py", [*TRAIN, "--finetune.lr", "fast"], "invalid float value: 'fast'"),
    ("train.py", [*TRAIN, "--experiment.seeds", "2.5"], "invalid int value: '2.5'"),
    # train.py: out of range
    ("train.py", [*TRAIN, "--data.n_report", "6"], "need n_min <= n < N"),
    ("train.py", [*TRAIN, "--data.n_min", "1"], "data.n_min must be at least 2"),
    ("train.py", [*TRAIN, "--data.vocab", "6"], "data.vocab=6 is smaller than the largest evaluated size 8"),
    ("train.py", [*TRAIN, "--data.pool", "0"], "data.pool must be positive"),
    ("train.py", [*TRAIN, "--data.finetune_pool", "0"], "data.finetune_pool must be positive"),
    ("train.py", [*TRAIN, "--data.eval_per_distance", "-1"], "data.eval_per_distance must be >= 0"),
    ("train.py", [*TRAIN, "--data.eval_per_size", "0"], "data.eval_per_size >= 1"),
    ("train.py", [*TRAIN, "--model.heads", "3"], "not divisible"),
    ("train.py", [*TRAIN, "--model.heads", "0"], "model.heads must be positive"),
    ("train.py", [*TRAIN, "--model.loops", "-1"], "model.loops must be >= 0"),
    ("train.py", [*TRAIN, "--model.mimetic", "nan"], "model.mimetic must be >= 0 and finite"),
    ("train.py", [*TRAIN, "--pretrain.steps", "0"], "pretrain.steps must be positive"),
    # train.py: sizes whose generator arrays fit on no machine (24 B x 128 graphs x 200,000^2: 123 TB)
    ("train.py", [*TRAIN, "--data.n_max", "200000", "--data.vocab", "200002"], "the largest N that fits is"),
    # ... and the batches drawn at once count: 10^9 fine-tuning batches of a 16-vertex graph are 12 TB
    ("train.py", [*TRAIN, "--finetune.draw_ahead", "1000000000"], "or lower finetune.batch_size or finetune.draw"),
    ("train.py", [*TRAIN, "--pretrain.draw_ahead", "1000000000"], "or lower pretrain.batch_size, data.pool or pre"),
    ("train.py", [*TRAIN, "--pretrain.draw_ahead", "0"], "pretrain.draw_ahead must be positive"),
    # ... and ids whose dense (vocab + 1)^2 adjacency alone fits on no machine (16 graphs x (3 x 10^6)^2: 144 TB)
    ("train.py", [*TRAIN, "--data.vocab", "3000000"], "the largest vocab that fits is"),
    # ... and an evaluated size beyond every training size that alone cannot be drawn (24 B x 10^12: 24 TB)
    ("train.py", [*TRAIN, "--data.eval_beyond", "1000000", "--data.vocab", "1000008"], "data.eval_beyond = 1000006"),
    ("train.py", [*TRAIN, "--finetune.lr", "-1"], "finetune.lr must be positive"),
    ("train.py", [*TRAIN, "--pretrain.lr", "nan"], "pretrain.lr must be positive and finite"),
    ("train.py", [*TRAIN, "--pretrain.lr", "inf"], "pretrain.lr must be positive and finite"),
    ("train.py", [*TRAIN, "--pretrain.clip", "0"], "pretrain.clip must be positive"),
    ("train.py", [*TRAIN, "--finetune.weight_decay", "-0.1"], "finetune.weight_decay >= 0"),
    ("train.py", [*TRAIN, "--experiment.seeds", "0"], "experiment.seeds must be positive"),
    # train.py: paths
    ("train.py", replaced(TRAIN, "--run-dir", "{tmp}/a_file"), "File exists"),
    ("train.py", replaced(TRAIN, "--results-dir", "{tmp}/a_file"), "is not a directory"),
    ("train.py", replaced(TRAIN, "--run-dir", "{tmp}/bad_config_run"), "not a valid run config"),
    # eval.py
    ("eval.py", EVAL, "the following arguments are required: --run"),
    ("eval.py", [*EVAL, "--run", "{tmp}/nowhere"], "is not a run directory"),
    ("eval.py", [*EVAL, "--run", "{tmp}/a_file"], "is not a run directory"),
    ("eval.py", [*EVAL, "--run", "{tmp}/empty_dir"], "is not a run directory"),
    ("eval.py", [*EVAL, "--run", "{tmp}/bad_config_run"], "not a valid run config"),
    ("eval.py", [*EVAL, "--run", "{tmp}/old_config_run"], "not a valid run config"),
    ("eval.py", [*EVAL, "--run", "{tmp}/empty_dir", "--seeds", "3"], "unrecognized arguments: --seeds"),
    ("eval.py", [*EVAL, "--run", "{tmp}/empty_dir", "--sweep", "everything"], "unknown sweep 'everything'"),
    # python -m graphgen
    ("graphgen", [], "the following arguments are required: command"),
    ("graphgen", ["frobnicate"], "invalid choice: 'frobnicate'"),
    ("graphgen", EXPORT[:-2], "the following arguments are required: --out"),
    ("graphgen", replaced(EXPORT, "--family", "hypercube"), "unknown family 'hypercube'"),
    ("graphgen", replaced(EXPORT, "--sizes", "9:3"), "empty size range"),
    ("graphgen", replaced(EXPORT, "--sizes", "1:4"), "at least 2"),
    ("graphgen", replaced(EXPORT, "--sizes", "two:4"), "not a size range"),
    ("graphgen", replaced(EXPORT, "--count", "0"), "must be positive"),
    ("graphgen", replaced(EXPORT, "--count", "many"), "not a whole number"),
    ("graphgen", [*EXPORT, "--seed", "x"], "invalid int value: 'x'"),
    ("graphgen", [*EXPORT, "--vocab", "3"], "smaller than the largest size"),
    ("graphgen", replaced(EXPORT, "--sizes", "2000000:2000000"), "the largest size that fits is"),  # 96 TB each
    ("graphgen", replaced(EXPORT, "--count", "10000000000"), "examples of that size"),  # 4 TB of arrays
    # The largest size asked for must be drawable, though 10 graphs of sizes 8..17 would be (24 B x 10^16 each)
    ("graphgen", ISSUE_35, "graphs of 100000000 vertices (ids 1..100000000) need about"),
    ("graphgen", replaced(EXPORT, "--out", "/no/such/dir/x.npz"), "does not exist"),
    ("graphgen", replaced(EXPORT, "--out", "/proc/x.npz"), "cannot write"),  # fails when writing, not before
]
# One case of each command, each past the imports of jax, flax and orbax.
IN_A_PROCESS = [
    next(case for case in CASES if case[0] == command and case[2] == message)
    for command, message in [
        ("train.py", "unknown preset 'huge'"),
        ("eval.py", "is not a run directory"),
        ("graphgen", "unknown family 'hypercube'"),
    ]
]


def setup(tmp) -> dict:
    """Paths the cases point at; returns a snapshot of everything under `tmp`."""
    (tmp / "a_file").write_text("not a directory")
    (tmp / "empty_dir").mkdir()
    for name, config in {"bad_config_run": "{not json", "old_config_run": '{"data": {"size": 4}}'}.items():
        (tmp / name).mkdir()
        (tmp / name / "config.json").write_text(config)
    return snapshot(tmp)


def snapshot(tmp) -> dict:
    return {str(p.relative_to(tmp)): p.read_bytes() if p.is_file() else None for p in sorted(tmp.rglob("*"))}


def expand(argv: list[str], tmp) -> list[str]:
    return [a.replace("{tmp}", str(tmp)) for a in argv]


def check(code: int, stderr: str, message: str) -> None:
    assert code == 2, stderr
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert message in stderr, stderr


@pytest.mark.parametrize(("command", "argv", "message"), CASES, ids=[f"{c[0]}:{' '.join(c[1])}" for c in CASES])
def test_bad_input_is_one_line_exit_2_nothing_written(command, argv, message, tmp_path, capsys):
    before = setup(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        MAINS[command](expand(argv, tmp_path))
    check(exit_.value.code, capsys.readouterr().err, message)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(("command", "argv", "message"), IN_A_PROCESS, ids=list(MAINS))
def test_bad_input_in_a_real_process(command, argv, message, tmp_path):
    before = setup(tmp_path)
    launch = [sys.executable, "-m", "graphgen"] if command == "graphgen" else [sys.executable, command]
    result = subprocess.run([*launch, *expand(argv, tmp_path)], capture_output=True, text=True, timeout=300)
    check(result.returncode, result.stderr, message)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    ("module", "argv", "message"),
    [
        ("bench.gen", ["--sizes", "16,3000000"], "--sizes 3000000: 64 graphs drawn at once of 3000000 vertices"),
        ("bench.gen_bound", ["--sizes", "3000000"], "the largest size that fits is"),
        ("bench.scaling", ["--sizes", "16,3000000"], "--sizes 3000000: data.n_max = 3000000"),
    ],
)
def test_a_benchmark_refuses_a_size_it_cannot_draw_before_measuring_any(module, argv, message, monkeypatch, capsys):
    """Every size is checked before the first is measured: nothing of size 16 is printed, nothing compiles."""
    monkeypatch.setattr(sys, "argv", [module, *argv])
    with pytest.raises(SystemExit) as exit_:
        importlib.import_module(module).main()
    out = capsys.readouterr()
    check(exit_.value.code, out.err, message)
    assert out.out == ""


def test_a_comma_separated_list_of_sizes_is_read_or_refused_by_name():
    """The benchmarks' --sizes and --chunks: argparse turns the refusal into one line and exit 2."""
    assert positive_ints("16,64") == [16, 64]
    with pytest.raises(argparse.ArgumentTypeError, match="'x' is not a whole number"):
        positive_ints("16,x")
    with pytest.raises(argparse.ArgumentTypeError, match="must be positive, got 0"):
        positive_ints("16,0")
