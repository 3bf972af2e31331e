"""Splits: which queries the report head gets labels for, and which it must answer unchecked.

A split is a value written as a string (`data.split`, or a variant's `~SPLIT`):

    size                 labels on sizes n_min..n; held out: the sizes n+1..N (the default)
    family:X             labels on every family but X, at every size <= N; held out: family X
    family:X:A+B         labels on the families A and B only (the number of checked columns is an axis)
    distance:K           labels on queries with d(s,u) <= K, at every size <= N; held out: d(s,u) > K
    offpath              labels on the s-t path's vertices, at every size <= N; held out: every other vertex

Every split labels path queries only (the training data has a unique path and its labels by construction);
the oracle, which labels everything, labels every vertex under `offpath` so that it is a ceiling there too.
"""

import dataclasses

KINDS = ("size", "family", "distance", "offpath")


@dataclasses.dataclass(frozen=True)
class Split:
    kind: str = "size"
    held_out: str = ""  # family: the family never labelled
    labelled: tuple[str, ...] = ()  # family: the labelled families (empty: every other family)
    max_distance: int = 0  # distance: the largest labelled d(s,u)

    def labelled_families(self, families: list[str]) -> list[str]:
        """The families whose graphs carry labels (all of them but under a family split)."""
        if self.kind != "family":
            return list(families)
        return list(self.labelled) or [f for f in families if f != self.held_out]

    def unlabelled_families(self, families: list[str]) -> list[str]:
        """The families whose questions a consistency loss sees: the held-out one under a family split."""
        return [self.held_out] if self.kind == "family" else list(families)

    def label_sizes_to_n(self) -> bool:
        """Whether labels stop at the size n (the size split) rather than N."""
        return self.kind == "size"

    def __str__(self) -> str:
        if self.kind == "family":
            return f"family:{self.held_out}" + (f":{'+'.join(self.labelled)}" if self.labelled else "")
        return f"distance:{self.max_distance}" if self.kind == "distance" else self.kind


def parse_split(text: str, families: list[str] | None = None) -> Split:
    """The split a string names (see the module docstring). Raises ValueError naming what is wrong; with
    `families`, also for a family that is not among them."""
    kind, _, rest = text.partition(":")
    if kind not in KINDS:
        raise ValueError(f"unknown split '{text}' (choose from: size, family:X[:A+B...], distance:K, offpath)")
    if kind in ("size", "offpath"):
        if rest:
            raise ValueError(f"split '{kind}' takes no argument, got '{text}'")
        return Split(kind)
    if kind == "distance":
        if not rest.isdigit() or int(rest) < 1:
            raise ValueError(f"split '{text}': distance:K needs a whole number K >= 1")
        return Split(kind, max_distance=int(rest))
    held_out, _, labelled = rest.partition(":")
    split = Split(kind, held_out, tuple(filter(None, labelled.split("+"))))
    if not held_out:
        raise ValueError(f"split '{text}': family:X needs the held-out family X")
    if held_out in split.labelled:
        raise ValueError(f"split '{text}': the held-out family {held_out} cannot be labelled too")
    if families is not None:
        unknown = [f for f in (held_out, *split.labelled) if f not in families]
        if unknown:
            raise ValueError(f"split '{text}': family '{unknown[0]}' is not in data.families ({', '.join(families)})")
        if not split.labelled_families(families):
            raise ValueError(f"split '{text}' leaves no labelled family")
    return split
