"""The pretrained model as an artefact that runs share: pretraining is paid for once per key, not once per run.

A pretrained encoder and d(s,t) head are determined by the pretraining's data, model and optimizer config and
by the code that trains them. Their hash is the key; the pretraining lives in the store under it:

    STORE/KEY/pretraining.json      what the key hashes (config and code fingerprint), for a reader
    STORE/KEY/log.jsonl, tb/, checkpoints/pretrain/
                                     the pretraining itself, as a run dir holds it (a killed one resumes)
    STORE/KEY/done.json              written last: the final step and the parameters' content hash

STORE is $PATHPROBE_PRETRAINED, default ~/.cache/pathprobe/pretrained. Every run with the same key (any
preset, sweep, results dir, fine-tuning or evaluation setting) reuses it. The run dir keeps a copy of the
final checkpoint and the pretraining's log lines, and `pretrained.json` naming the key, so that a run dir
stays complete on its own (eval.py never needs the store). Both copies are checked against the recorded
hash whenever they are loaded (experiment/stored.py, which reads stored models and never trains one): a
corrupt or truncated one is refused with a one-line error.
"""

import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

import jax
from flax import nnx

from common.files import read_jsonl, write_atomic, write_json
from configs import Config
from experiment.events import PhaseEvents, phase_dir
from experiment.hosts import barrier, is_primary, say
from experiment.phases import pretrain
from experiment.rundir import PRETRAIN, RunError, read_log
from experiment.stored import DONE, RECORD, load_checked, params_hash, read_record
from models.objectives import PRETRAINED

# The code that pretraining runs: a change to any of these files makes a new key (never a stale reuse).
CODE = ("graphgen", "models", "experiment/fit.py", "experiment/mesh.py", "experiment/optim.py", "experiment/phases.py")
ROOT = Path(__file__).resolve().parent.parent


def store_root() -> Path:
    default = Path.home() / ".cache" / "pathprobe" / "pretrained"
    return Path(os.environ.get("PATHPROBE_PRETRAINED", default))


def pretraining_config(cfg: Config) -> dict:
    """The config fields that determine the pretrained parameters (not how often they are logged or saved)."""
    data = cfg.data
    return {
        "data": {
            "families": data.family_list(),
            **{k: getattr(data, k) for k in ("n_min", "n_max", "vocab", "pool")},
            # Only a learned overseer changes the parameters (its answers depend on n); the control shares the
            # plain pretraining.
            **({"overseer": data.overseer, "n_report": data.n_report} if data.learned_overseer() else {}),
        },
        "model": dataclasses.asdict(cfg.model),
        "pretrain": {  # not the fields that leave the parameters as they are
            k: v
            for k, v in dataclasses.asdict(cfg.pretrain).items()
            if k not in ("log_every", "checkpoint_every", "draw_ahead")
        },
    }


def code_fingerprint() -> str:
    """SHA-256 over the source of every file pretraining runs (CODE), by path."""
    digest = hashlib.sha256()
    files = sorted(p for name in CODE for p in ([ROOT / name] if name.endswith(".py") else (ROOT / name).rglob("*.py")))
    for path in files:
        digest.update(f"{path.relative_to(ROOT)}\n".encode() + path.read_bytes())
    return digest.hexdigest()


def key_of(cfg: Config) -> tuple[str, dict]:
    """The pretrained model's key (16 hex digits) and what it hashes."""
    what = {"config": pretraining_config(cfg), "code": code_fingerprint()}
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16], what


def pretrained_for(cfg: Config, run_dir: Path) -> nnx.State:
    """The run's pretrained encoder and d(s,t) head: the run dir's own copy if it has one, else the store's
    model for this config, pretrained there first if no run has yet."""
    # Every process decides from the same files: all look before any writes.
    barrier("pretrained: before looking")
    has_record, has_copy = (run_dir / RECORD).exists(), (run_dir / "checkpoints" / PRETRAIN).is_dir()
    barrier("pretrained: every process has looked")
    if not has_record:
        if has_copy:
            raise RunError(
                f"{run_dir} holds a pretraining of its own (made before pretraining was shared): pass --overwrite"
            )
        record = _from_store(cfg)
        if is_primary():
            write_json(run_dir / RECORD, record)  # first: a copy cut short below is redone on --resume
        barrier("pretrained: the record is written")
    record = read_record(run_dir / RECORD)
    if not has_copy:
        if is_primary():
            _copy_into(run_dir, Path(record["store"]), record)
        barrier("pretrained: the copy is made")
    return nnx.state(load_checked(cfg, run_dir), PRETRAINED)


def _from_store(cfg: Config) -> dict:
    """The store's entry for this config, trained (or resumed) first if unfinished, its hash checked."""
    key, what = key_of(cfg)
    directory = store_root() / key
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        store = f"{store_root()} ($PATHPROBE_PRETRAINED)"
        raise RunError(f"cannot use {store} as the store of pretrained models: {e}") from None
    with _lock(directory):
        done = directory / DONE
        trained = not done.exists()
        barrier("store: every process has looked")  # before the primary writes done.json
        if trained:
            say(f"pretraining {key} into {directory}")
            if is_primary():
                write_json(directory / "pretraining.json", what)
            state = nnx.state(pretrain(cfg, directory), PRETRAINED)
            if is_primary():
                write_json(done, {"key": key, "steps": cfg.pretrain.steps, "params_sha256": params_hash(state)})
            barrier("pretrained: the store entry is done")
        else:
            say(f"reusing pretrained model {key} from {directory}")
        load_checked(cfg, directory)
    return {**read_record(done), "store": str(directory), "trained_by_this_run": trained}


def _copy_into(run_dir: Path, store: Path, record: dict) -> None:
    """The store's final checkpoint and pretraining log lines into the run dir (checkpoint via a temporary
    name and a rename: never half there)."""
    source = store / "checkpoints" / PRETRAIN / str(record["steps"])  # a path: a manager would sync every process
    if not source.is_dir():
        raise RunError(f"the pretrained model {record['key']} is gone from {store}: pass --overwrite to pretrain again")
    target = run_dir / "checkpoints" / PRETRAIN
    tmp = target.with_name(f".{PRETRAIN}.copy")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(source, tmp / str(record["steps"]))
    tmp.rename(target)
    records = [{**r, "pretrained": record["key"]} for r in read_log(store) if r["phase"] == PRETRAIN]
    others = [r for r in read_jsonl(run_dir / "log.jsonl") if r["phase"] != PRETRAIN]
    text = "".join(json.dumps(r) + "\n" for r in records + others)
    write_atomic(run_dir / "log.jsonl", lambda f: f.write(text.encode()))
    PhaseEvents(phase_dir(run_dir, PRETRAIN), records).close()


@contextmanager
def _lock(directory: Path):
    """One process at a time pretrains or reads a store entry (a second run with the same key waits, then
    reuses). Not across the processes of one multi-host job, which pretrain together."""
    if jax.process_count() > 1:
        yield
        return
    with open(directory.with_suffix(".lock"), "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
