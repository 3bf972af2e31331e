"""Sweeps: named grids of report variants trained on one run's shared pretraining (train.py --sweep NAME).
Each is a function of the run's data config (the families a grid of columns is drawn from, the overseer)."""

from collections.abc import Callable

import numpy as np

from common.cli import UsageError
from configs.config import DataConfig
from graphgen.overseers import OVERSEERS
from models.consistency import CONDITIONS
from models.objectives import ladder

COLUMNS_SEED = 0  # which k families label each fold's cells: fixed, so every run of the sweep has the same


def consistency_sweep(data: DataConfig) -> list[str]:
    """The grid of docs/design.md: no consistency, each condition alone, the strength ladder (each rung adds
    conditions to the last), every check together, every check with self-training (confidence),
    consistency-only, and the oracle."""
    cells = ["frozen", *(f"frozen@{c}" for c in CONDITIONS), *ladder("frozen"), "frozen@all"]
    cells += ["frozen@all+confidence", "consistency-only"]  # self-training on top of every check
    return list(dict.fromkeys([*cells, "oracle"]))  # the ladder's first rung is a single condition


def columns_sweep(data: DataConfig) -> list[str]:
    """The number of checked columns: every family X held out in turn (a fold), with labels on k = 1..F-1 of
    the others at every size <= N. Fold X's cells label the first k families of one seeded order of the
    others, so that each k adds a column to k-1's. The oracle (labels on every family) is the ceiling."""
    families = data.family_list()
    if len(families) < 2:
        raise UsageError("the columns sweep holds out one family and labels others: data.families needs two or more")
    cells = []
    for fold, held_out in enumerate(families):
        others = [f for f in families if f != held_out]
        order = [others[i] for i in np.random.default_rng([COLUMNS_SEED, fold]).permutation(len(others))]
        cells += [f"frozen~family:{held_out}:{'+'.join(order[:k])}" for k in range(1, len(others) + 1)]
    return [*cells, "oracle"]


def overseer_sweep(data: DataConfig) -> list[str]:
    """The levers on which policy a reporter learns where the overseer (data.overseer) and the truth disagree:
    every reporter design on the frozen encoder, the warm one also starting from the overseer's question (where
    pretraining learned it), the encoder trainable, and every check as a consistency loss (computed on the real
    graph) on the frozen reporters; the oracle. The control, no overseer in pretraining, is the same sweep with
    --data.learn_overseer false."""
    if not data.overseer:
        raise UsageError(f"the overseer sweep needs --data.overseer (one of: {', '.join(OVERSEERS)})")
    heads = ["warm", "shared", *(["warm-overseer"] if data.learned_overseer() else [])]
    cells = [f"frozen:{head}".removesuffix(":warm") for head in heads]
    return [*cells, "frozen:fresh", "trainable", *(f"{cell}@all" for cell in cells), "oracle"]


def encoder_sweep(data: DataConfig) -> list[str]:
    """The whole model fine-tuned: the reporter on the frozen encoder and with the encoder and d(s,t) head
    learning too, without and with the d(s,t) loss kept on, each beside its own ceiling (the oracle that trains
    what it trains)."""
    return ["frozen", "trainable", "trainable+dst", "oracle", "trainable-oracle"]


SWEEPS = {
    "consistency": consistency_sweep,
    "columns": columns_sweep,
    "overseer": overseer_sweep,
    "encoder": encoder_sweep,
}


def sweep(name: str) -> Callable[[DataConfig], list[str]]:
    """The sweep `name`: the run's data config -> its variants (UsageError, one line, for a config it cannot
    fill); UsageError for an unknown name."""
    if name not in SWEEPS:
        raise UsageError(f"unknown sweep '{name}' (choose from: {', '.join(SWEEPS)})")
    return SWEEPS[name]


def sweep_variants(name: str, data: DataConfig) -> list[str]:
    """The variants of the sweep `name` for the run's data config; UsageError (one line) for an unknown sweep or
    one the config cannot fill."""
    return sweep(name)(data)
