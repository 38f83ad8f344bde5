"""Which side, train or test, each face falls on: leak-free units, each side a fixed function of its key.

Faces that must not be separated form one unit: all faces of one near-duplicate group and all
faces cut from one source image, and transitively everything these link. A unit's key is the
smallest source image ID in it; it goes to test when a hash of the key and the salt, read as a
number in [0, 1), is below the test ratio. Everything works on arrays of IDs (bytes or str), so a
million faces cost a few sorts; spilled columns (preprocess/spill.py) are handed back after each.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from anigan.ids import stable_fraction
from preprocess.columns import distinct, lookup_column
from preprocess.groups import components, same_key_edges
from preprocess.spill import release


def image_ranks(image_ids: np.ndarray) -> np.ndarray:
    """Each face's image ID as its rank among the distinct IDs: equal and ordered as the IDs are, in 4 bytes rather than 64."""
    rank = lookup_column(distinct(image_ids), image_ids)
    return rank.astype(np.int32) if len(rank) < 2**31 else rank


def units(image_ids: np.ndarray, group_ids: np.ndarray, ranks: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each face's unit (an index into the keys) and each unit's split key: the smallest image ID in it.

    Keys are held per unit, never per face; IDs are sorted and compared by their `image_ranks`
    (given, or made here). Two units never share a key: faces with one image ID are in one unit.
    """
    n = len(image_ids)
    ranks = image_ranks(image_ids) if ranks is None else ranks
    labels = components(n, [same_key_edges(ranks), same_key_edges(group_ids)])  # each unit named by its first face
    release(group_ids)
    by_unit = np.lexsort((ranks, labels))
    names, first = np.unique(labels[by_unit], return_index=True)
    keys = image_ids[by_unit[first]]
    release(image_ids)
    return np.searchsorted(names, labels), keys


def unit_keys(image_ids: np.ndarray, group_ids: np.ndarray) -> np.ndarray:
    """Each face's split key: the smallest image ID among the faces it is linked to by image or group."""
    unit_of, keys = units(image_ids, group_ids)
    return keys[unit_of]


def _text(key: bytes | str) -> str:
    return key.decode("utf-8") if isinstance(key, bytes) else str(key)


def side_of(key: str, test_ratio: float, salt: str = "") -> str:
    """'test' or 'train' for a split key: a fixed function of the key, the salt and the ratio."""
    return "test" if stable_fraction(key, salt) < test_ratio else "train"


def held_out(image_ids: np.ndarray, group_ids: np.ndarray, test_ratio: float, salt: str = "", ranks: np.ndarray | None = None) -> np.ndarray:
    """True for each face on the test side (`ranks`: the image IDs' `image_ranks`, when made already); the key hash is computed once per unit."""
    unit_of, keys = units(image_ids, group_ids, ranks)
    in_test = np.fromiter((side_of(_text(k), test_ratio, salt) == "test" for k in keys), dtype=bool, count=len(keys))
    return in_test[unit_of]


def split_keys(image_ids: Sequence[str], group_ids: Sequence[str]) -> list[str]:
    """unit_keys for lists of strings."""
    return [str(k) for k in unit_keys(np.asarray(image_ids, dtype=str), np.asarray(group_ids, dtype=str))]


def assign_sides(image_ids: Sequence[str], group_ids: Sequence[str], test_ratio: float, salt: str = "") -> list[str]:
    """The side of each face, keeping every source image and every duplicate group on one side."""
    mask = held_out(np.asarray(image_ids, dtype=str), np.asarray(group_ids, dtype=str), test_ratio, salt)
    return ["test" if t else "train" for t in mask.tolist()]
