"""One GPU: larger graphs and model, longer training (python train.py --preset paper). Each generator call draws
16 steps' batches: on an H200 that cut generation from 23% to 4% of a pretraining step and from 52% to 9% of
a fine-tuning step (bench/README.md); the batches are the same as drawn one at a time."""

from configs.config import Config, DataConfig, ExperimentConfig, OptimConfig
from models.model import ModelConfig

CONFIG = Config(
    data=DataConfig(n_min=4, n_max=32, n_report=12, vocab=48, eval_beyond=8, eval_per_size=200),
    model=ModelConfig(width=128, heads=8),
    pretrain=OptimConfig(steps=3000, batch_size=512, lr=5e-4, warmup=300, checkpoint_every=1000, draw_ahead=16),
    finetune=OptimConfig(steps=2000, batch_size=256, lr=2e-3, warmup=100, weight_decay=0.0, seed=100, draw_ahead=16),
    experiment=ExperimentConfig(seeds=5, vmap_seeds=True),
)
