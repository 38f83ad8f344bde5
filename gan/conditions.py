"""Hair and eye colour conditions of the ACGAN: vocabularies, training labels, and labels for sampling.

A conditional checkpoint's meta holds `model: "acgan"` and `conditions: {"hair": [...], "eyes": [...]}`,
the colour names in index order. A label is a LongTensor row [hair_index, eye_index]. Colours with
fewer than `train.min_color_count` training faces, and faces without a colour, share the name
`other` (present only when some face needs it). A DCGAN checkpoint (no `model` in old ones) has no
conditions: its labels are None.
"""

from __future__ import annotations

import hashlib
from array import array
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from anigan.errors import UserError
from anigan.files import read_jsonl
from gan.runtime import derive_seed

OTHER = "other"
# condition name (as in meta and on the command line) -> its column in the dataset index rows
ATTRIBUTES = {"hair": "hair_color", "eyes": "eye_color"}
INDEX_FILE = "train.jsonl"

Conditions = dict[str, list[str]]


def model_of(meta: Mapping[str, Any]) -> str:
    """"dcgan" or "acgan"; checkpoints written before ACGAN existed have no `model` and are DCGANs."""
    return meta.get("model", "dcgan")


def conditions_of(meta: Mapping[str, Any]) -> Conditions | None:
    """The colour vocabularies of a conditional checkpoint, or None for a DCGAN."""
    return meta.get("conditions") if model_of(meta) == "acgan" else None


def colour_of(row: Mapping[str, Any], column: str) -> str | None:
    """A row's colour word; anything but a non-empty string (a damaged or hand-made index) counts as unknown."""
    value = row.get(column)
    return value if isinstance(value, str) and value else None


def color_vocabularies(rows: Iterable[Mapping[str, Any]], min_count: int) -> Conditions:
    """{"hair": names, "eyes": names}: colours with at least `min_count` rows, sorted, then `other` if any row needs it."""
    rows = list(rows)
    return {name: _vocabulary(Counter(colour_of(row, column) for row in rows), min_count) for name, column in ATTRIBUTES.items()}


def _vocabulary(counts: Mapping[str | None, int], min_count: int) -> list[str]:
    """One attribute's names from its colour counts (None: no colour)."""
    kept = sorted(c for c, n in counts.items() if c not in (None, OTHER) and n >= min_count)
    folded = any(c not in kept for c in counts)
    return kept + ([OTHER] if folded else [])


def label_rows(rows: Iterable[Mapping[str, Any]], conditions: Conditions) -> np.ndarray:
    """int64 (N, 2) [hair, eyes] indices of the rows' colours; an unknown colour is `other`, or -1 without one."""
    columns = []
    for name, column in ATTRIBUTES.items():
        index = {c: i for i, c in enumerate(conditions[name])}
        fallback = index.get(OTHER, -1)
        columns.append([index.get(colour_of(row, column), fallback) for row in rows])
    return np.asarray(columns, dtype=np.int64).T.reshape(-1, len(ATTRIBUTES))


@dataclass(frozen=True)
class ColorLabels:
    """The training set's colour conditions: vocabularies and one label row per training image."""

    conditions: Conditions
    labels: np.ndarray  # int64 (N, 2): [hair, eyes] per row of train.npy

    @property
    def sha256(self) -> str:
        """Digest of the vocabularies and labels: a run trained on other labels is another run."""
        h = hashlib.sha256(repr(sorted(self.conditions.items())).encode())
        h.update(np.ascontiguousarray(self.labels).tobytes())
        return h.hexdigest()


def _read_color_codes(path: Path) -> tuple[dict[str, Counter], dict[str, np.ndarray], list[str | None]]:
    """One streamed pass over a dataset index: per attribute, the colour counts (in first-seen order)
    and an int32 code per row into `colours` (the distinct colour words, None for none)."""
    codes: dict[str | None, int] = {}
    columns: dict[str, array] = {name: array("i") for name in ATTRIBUTES}  # 4 bytes a row, not a dict
    counts: dict[str, Counter] = {name: Counter() for name in ATTRIBUTES}
    for row in read_jsonl(path):
        for name, column in ATTRIBUTES.items():
            colour = colour_of(row, column)
            counts[name][colour] += 1
            columns[name].append(codes.setdefault(colour, len(codes)))
    return counts, {name: np.frombuffer(column, dtype=np.int32) for name, column in columns.items()}, list(codes)


def load_color_labels(dataset_dir: str | Path, count: int, min_count: int) -> ColorLabels:
    """Read `<dataset>/train.jsonl` (the split stage's index, one row per train.npy image) into ColorLabels.

    The index is read as a stream into int codes, never held as records: it has a row per training face.
    """
    path = Path(dataset_dir) / INDEX_FILE
    if not path.is_file():
        raise UserError(f"{path}: no dataset index here; train.model = acgan needs the split stage's train.jsonl")
    counts, codes, colours = _read_color_codes(path)
    rows = sum(counts["hair"].values())
    if rows != count:
        raise UserError(f"{path}: {rows} rows for {count} training images; rerun the split stage")
    conditions = {name: _vocabulary(counts[name], min_count) for name in ATTRIBUTES}
    for name, names in conditions.items():
        if len(names) < 2:
            seen = ", ".join(f"{c or 'unknown'} {n}" for c, n in counts[name].most_common())
            raise UserError(
                f"train.model = acgan needs at least 2 {name} colours with train.min_color_count = {min_count} "
                f"or more faces; the training set has {seen}. Lower train.min_color_count or use train.model: dcgan"
            )
    # each distinct colour's index in the vocabulary; a colour left out is `other`, or -1 without one
    columns = []
    for name, names in conditions.items():
        index = {c: i for i, c in enumerate(names)}
        table = np.array([index.get(c, index.get(OTHER, -1)) for c in colours], dtype=np.int64)
        columns.append(table[codes[name]])
    return ColorLabels(conditions, np.stack(columns, axis=1))


def color_word(color: str) -> str:
    """A colour as typed (" Blue") in the vocabulary's spelling ("blue")."""
    return color.strip().lower()


def _index_of(conditions: Conditions, name: str, color: str) -> int:
    names = conditions[name]
    wanted = color_word(color)
    if wanted not in names:
        raise UserError(f"{name} colour {color!r}: this checkpoint knows {', '.join(names)}")
    return names.index(wanted)


def encode_conditions(meta: Mapping[str, Any], hair: str | None, eyes: str | None, count: int, seed: int) -> torch.Tensor | None:
    """Labels (count, 2) for a checkpoint: a named colour fixes its column, None draws it uniformly from `seed`.

    None for a DCGAN checkpoint; asking a DCGAN for a colour is a UserError, as is a colour the
    checkpoint does not know (the message lists the ones it knows). The draw does not depend on
    which colours are fixed, so fixing the hair keeps the eyes drawn without it.
    """
    conditions = conditions_of(meta)
    if conditions is None:
        if hair is not None or eyes is not None:
            raise UserError("this checkpoint is an unconditional DCGAN: it takes no hair or eye colour (train with train.model: acgan)")
        return None
    fixed = {"hair": hair, "eyes": eyes}
    indices = {name: _index_of(conditions, name, color) for name, color in fixed.items() if color is not None}
    # A stream of its own: the same seed also draws the noise, and the two must not be tied.
    rng = torch.Generator().manual_seed(derive_seed(seed, "conditions"))
    columns = [torch.randint(len(conditions[name]), (count,), generator=rng) for name in ATTRIBUTES]
    for i, name in enumerate(ATTRIBUTES):
        if name in indices:
            columns[i] = torch.full((count,), indices[name], dtype=torch.long)
    return torch.stack(columns, dim=1)


def grid_conditions(conditions: Conditions, columns: int) -> torch.Tensor:
    """Labels of a sample grid: one row per hair colour, eye colours cycling along the columns."""
    hair = torch.arange(len(conditions["hair"])).repeat_interleave(columns)
    eyes = torch.arange(columns).remainder(len(conditions["eyes"])).repeat(len(conditions["hair"]))
    return torch.stack([hair, eyes], dim=1)
