"""Sweeps: named grids of report variants trained on one run's shared pretraining (train.py --sweep NAME)."""

from common.cli import UsageError
from models.consistency import CONDITIONS
from models.objectives import ladder


def consistency_sweep() -> list[str]:
    """The grid of docs/design.md: no consistency, each condition alone, the strength ladder (each rung adds
    conditions to the last), every check together, every check with self-training (confidence),
    consistency-only, and the oracle."""
    cells = ["frozen", *(f"frozen@{c}" for c in CONDITIONS), *ladder("frozen"), "frozen@all"]
    cells += ["frozen@all+confidence", "consistency-only"]  # self-training on top of every check
    return list(dict.fromkeys([*cells, "oracle"]))  # the ladder's first rung is a single condition


SWEEPS = {"consistency": consistency_sweep}


def sweep_variants(name: str) -> list[str]:
    """The variants of the sweep `name`; UsageError (one line) for an unknown one."""
    if name not in SWEEPS:
        raise UsageError(f"unknown sweep '{name}' (choose from: {', '.join(SWEEPS)})")
    return SWEEPS[name]()
