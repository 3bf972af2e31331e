"""The README's command: the whole experiment on a 2-core CPU (python train.py --preset quick): 9 min 13 s
on a fresh clone with a cold compilation cache and no stored pretraining (idle 2-core AMD EPYC, jax 0.10.2);
about 6 min with the pretraining reused from the store.

800 pretraining steps: the d(s,t) head is 1.000 accurate on every size 4..16 after them (1,200 gave the same
up to N and a little more past it). Every reporter design with its own oracle (warm, the default; shared;
fresh, the old head, kept so that the difference is on one plot) and both probes, 1,000 fine-tuning steps
each (the warm and shared reporters have converged by then). The encoder-training variants (trainable,
trainable+dst, their ceiling trainable-oracle) each train alone at about half the step rate of a group of three
frozen ones on CPU: --sweep encoder (29 min) sets them beside frozen and oracle."""

from configs.config import Config

CONFIG = Config().replace(
    pretrain={"steps": 800},
    finetune={"steps": 1000},
    experiment={"variants": "frozen,oracle,frozen:shared,oracle:shared,frozen:fresh,oracle:fresh,probe,mlp-probe"},
)
