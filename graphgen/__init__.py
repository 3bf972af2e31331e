"""graphgen: exact shortest-path examples on random graphs, generated on device with JAX."""

from graphgen.families import FAMILIES, family
from graphgen.from_networkx import from_networkx
from graphgen.sample import GraphBatch, edge_capacity, family_names, sample_batch, sample_examples

__all__ = [
    "FAMILIES",
    "GraphBatch",
    "edge_capacity",
    "family",
    "family_names",
    "from_networkx",
    "sample_batch",
    "sample_examples",
]
