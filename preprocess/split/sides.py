"""Which side, train or test, each face falls on: leak-free units, each side a fixed function of its key.

Faces that must not be separated form one unit: all faces of one near-duplicate group and all
faces cut from one source image, and transitively everything these link. A unit's key is the
smallest source image ID in it; it goes to test when a hash of the key and the salt, read as a
number in [0, 1), is below the test ratio. Everything works on arrays of IDs (bytes or str), so a
million faces cost a few sorts of 8-byte codes; spilled columns (preprocess/spill.py) are read a
block at a time and handed back after each.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from anigan.ids import stable_fraction
from preprocess.groups import components, dense_codes, same_key_edges
from preprocess.spill import GATHER_ROWS, gather_blocks, read_rows, release


def units(image_ids: np.ndarray, group_ids: np.ndarray, image_codes: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each face's unit (an index into the second array) and, per unit, a row holding its split
    key: the smallest image ID in the unit.

    Equal IDs are found by preprocess.groups.key_runs (a 64-bit hash, neighbours compared;
    `image_codes`: the image IDs' dense_codes, when made already), and IDs are compared as values
    only within units of several images, a piece at a time, so no copy of an ID column is held.
    Units are numbered in the order of their first face.
    """
    n = len(image_ids)
    if not n:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    image_codes = dense_codes(image_ids) if image_codes is None else image_codes
    group_edges = same_key_edges(group_ids)
    labels = components(n, [same_key_edges(image_codes), group_edges])  # each unit named by its first face
    del group_edges
    index = np.int32 if n < 2**31 else np.int64  # rows and units in 4 bytes where they fit
    by_unit = np.argsort(labels, kind="stable").astype(index)
    labels = labels[by_unit]
    first = np.ones(n, dtype=bool)  # where a unit starts, in `by_unit` order
    first[1:] = labels[1:] != labels[:-1]
    del labels
    unit_at = (np.cumsum(first) - 1).astype(index)
    unit_of = np.empty(n, dtype=index)
    unit_of[by_unit] = unit_at
    starts = np.flatnonzero(first).astype(index)
    key_rows = by_unit[starts]  # right for a unit of one image; those of several are settled below
    codes = image_codes[by_unit]
    several = np.minimum.reduceat(codes, starts) != np.maximum.reduceat(codes, starts)
    del codes
    _settle_smallest(image_ids, by_unit, unit_at, np.flatnonzero(several[unit_at]), key_rows)
    return unit_of, key_rows


def _settle_smallest(image_ids: np.ndarray, by_unit: np.ndarray, unit_at: np.ndarray, positions: np.ndarray, key_rows: np.ndarray) -> None:
    """Set key_rows[u] to the row of the smallest image ID of each unit u at `positions` (of
    `by_unit`, whole units, in order), comparing IDs a piece of about GATHER_ROWS rows at a time."""
    if not len(positions):
        return
    unit_p = unit_at[positions]
    unit_starts = np.flatnonzero(np.r_[True, unit_p[1:] != unit_p[:-1]])
    # pieces end where a unit starts, the first such place past every GATHER_ROWS rows
    cuts = unit_starts[np.minimum(np.searchsorted(unit_starts, np.arange(GATHER_ROWS, len(positions), GATHER_ROWS)), len(unit_starts) - 1)]
    for piece in np.split(np.arange(len(positions)), np.unique(cuts[cuts > 0])):
        rows, unit = by_unit[positions[piece]], unit_p[piece]
        order = np.lexsort((read_rows(image_ids, rows), unit))  # by unit, then by ID
        unit, rows = unit[order], rows[order]
        head = np.r_[True, unit[1:] != unit[:-1]]
        key_rows[unit[head]] = rows[head]


def unit_keys(image_ids: np.ndarray, group_ids: np.ndarray) -> np.ndarray:
    """Each face's split key: the smallest image ID among the faces it is linked to by image or group."""
    unit_of, key_rows = units(image_ids, group_ids)
    return image_ids[key_rows][unit_of]


def _text(key: bytes | str) -> str:
    return key.decode("utf-8") if isinstance(key, bytes) else str(key)


def side_of(key: str, test_ratio: float, salt: str = "") -> str:
    """'test' or 'train' for a split key: a fixed function of the key, the salt and the ratio."""
    return "test" if stable_fraction(key, salt) < test_ratio else "train"


def held_out(image_ids: np.ndarray, group_ids: np.ndarray, test_ratio: float, salt: str = "", image_codes: np.ndarray | None = None) -> np.ndarray:
    """True for each face on the test side (`image_codes`: the image IDs' dense_codes, when made already);
    the key hash is computed once per unit."""
    unit_of, key_rows = units(image_ids, group_ids, image_codes)
    in_test = np.empty(len(key_rows), dtype=bool)
    for block in gather_blocks(len(key_rows)):
        in_test[block] = [side_of(_text(key), test_ratio, salt) == "test" for key in image_ids[key_rows[block]].tolist()]
        release(image_ids)
    return in_test[unit_of]


def split_keys(image_ids: Sequence[str], group_ids: Sequence[str]) -> list[str]:
    """unit_keys for lists of strings."""
    return [str(k) for k in unit_keys(np.asarray(image_ids, dtype=str), np.asarray(group_ids, dtype=str))]


def assign_sides(image_ids: Sequence[str], group_ids: Sequence[str], test_ratio: float, salt: str = "") -> list[str]:
    """The side of each face, keeping every source image and every duplicate group on one side."""
    mask = held_out(np.asarray(image_ids, dtype=str), np.asarray(group_ids, dtype=str), test_ratio, salt)
    return ["test" if t else "train" for t in mask.tolist()]
