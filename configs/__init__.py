"""Configs and presets. A preset is one small file here declaring `CONFIG`; copy one to start your own and add
it to PRESETS."""

from common.cli import UsageError
from configs import paper, quick, scale, tiny
from configs.config import (
    Config,
    DataConfig,
    ExperimentConfig,
    OptimConfig,
    comparable,
    config_changes,
    sections,
)
from configs.sweeps import SWEEPS, sweep, sweep_variants
from models.model import ModelConfig

PRESETS: dict[str, Config] = {"quick": quick.CONFIG, "paper": paper.CONFIG, "tiny": tiny.CONFIG, "scale": scale.CONFIG}


def preset(name: str) -> Config:
    """The preset `name`; UsageError (one line) for an unknown one."""
    if name not in PRESETS:
        raise UsageError(f"unknown preset '{name}' (choose from: {', '.join(PRESETS)})")
    return PRESETS[name]


__all__ = [
    "PRESETS",
    "SWEEPS",
    "Config",
    "DataConfig",
    "ExperimentConfig",
    "ModelConfig",
    "OptimConfig",
    "comparable",
    "config_changes",
    "preset",
    "sections",
    "sweep",
    "sweep_variants",
]
