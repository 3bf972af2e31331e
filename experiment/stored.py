"""Reading a stored pretrained model, never training one: the record a run dir (or a store entry) keeps of its
pretrained model, and loading that model with its parameters checked against the hash recorded when its
pretraining finished. The evaluation reads models through this file alone, so that it never imports the
trainer (experiment/pretrained.py pretrains and fills the store; tests/test_layout.py checks the direction)."""

import json
from pathlib import Path

import numpy as np
from flax import nnx

from configs import Config
from experiment.rundir import RunError, load_pretrained
from graphgen.dataset import content_hash
from models.model import PathModel
from models.objectives import PRETRAINED

RECORD = "pretrained.json"  # in a run dir: which pretrained model the run uses
DONE = "done.json"  # in a store entry: written last, the final step and the parameters' content hash


def params_hash(state: nnx.State) -> str:
    """Content hash of a model's parameters (names, dtypes, shapes, bytes)."""
    flat = nnx.to_flat_state(state)
    return content_hash({"/".join(map(str, path)): np.asarray(leaf[...]) for path, leaf in flat})


def load_checked(cfg: Config, directory: Path) -> PathModel:
    """The pretrained model of a run dir (or store entry), its parameters checked against the hash its
    pretrained.json (done.json) records; RunError if they differ. A run dir without a record (made before
    pretraining was shared) is loaded unchecked."""
    model = load_pretrained(cfg, directory)
    record_file = directory / (RECORD if (directory / RECORD).exists() else DONE)
    if record_file.exists() and params_hash(nnx.state(model, PRETRAINED)) != read_record(record_file)["params_sha256"]:
        raise RunError(
            f"the pretrained model in {directory} does not match the hash in {record_file.name} (corrupt): "
            "delete it to pretrain again"
        )
    return model


def record_of(run_dir: Path) -> dict | None:
    """Which pretrained model a run uses (its pretrained.json), None for a run dir without one."""
    return read_record(run_dir / RECORD) if (run_dir / RECORD).exists() else None


def read_record(path: Path) -> dict:
    """A JSON record of the store (pretrained.json, done.json); RunError (one line) if unreadable."""
    try:
        return json.loads(path.read_text())
    except (ValueError, OSError) as e:
        raise RunError(f"{path} is not a readable record ({type(e).__name__}: {e})") from None
