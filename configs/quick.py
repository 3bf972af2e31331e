"""The README's command: the whole experiment on a 2-core CPU in minutes (python train.py --preset quick).

Every reporter design with its own oracle (warm, the default; shared; fresh, the old head, kept so that the
difference is on one plot) and both probes, 1,000 fine-tuning steps each (the warm and shared reporters have
converged by then). The encoder-training variants (trainable, trainable+dst) cost ~6x a frozen one per step
on CPU: opt in with --experiment.variants."""

from configs.config import Config

CONFIG = Config().replace(
    pretrain={"steps": 800},
    finetune={"steps": 1000},
    experiment={"variants": "frozen,oracle,frozen:shared,oracle:shared,frozen:fresh,oracle:fresh,probe,mlp-probe"},
)
