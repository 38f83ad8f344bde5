"""Assigning faces to train/test: leak-free, stable when data is added, deterministic, close to the ratio."""

import numpy as np
import pytest

from preprocess.split.sides import assign_sides, side_of, split_keys
from tests.faces_folder import image_id_for


def synthetic(n_images: int, seed: int = 0, faces_per_image: int = 3, dup_share: float = 0.2):
    """Faces cut from n images (1..faces_per_image each), some in near-duplicate groups spanning images."""
    rng = np.random.default_rng(seed)
    face_ids, image_ids, group_ids = [], [], []
    for k in range(n_images):
        image_id = image_id_for(f"img-{seed}-{k}")
        for j in range(int(rng.integers(1, faces_per_image + 1))):
            fid = f"{image_id[:8]}-{j}"
            face_ids.append(fid)
            image_ids.append(image_id)
            group_ids.append(fid)
    # near-duplicate groups: some faces join the group of a face from another image
    for i in rng.choice(len(face_ids), size=int(dup_share * len(face_ids)), replace=False):
        group_ids[i] = group_ids[int(rng.integers(0, len(face_ids)))]
    return face_ids, image_ids, group_ids


def sides_by(keys, sides):
    seen = {}
    for k, s in zip(keys, sides):
        seen.setdefault(k, set()).add(s)
    return seen


def test_no_source_image_or_duplicate_group_is_split_across_sides():
    _, image_ids, group_ids = synthetic(2000, seed=1)
    sides = assign_sides(image_ids, group_ids, test_ratio=0.3)
    assert all(len(s) == 1 for s in sides_by(image_ids, sides).values())
    assert all(len(s) == 1 for s in sides_by(group_ids, sides).values())
    assert {"train", "test"} == set(sides)


def test_links_are_followed_transitively():
    # face 0 and 1 share an image, 1 and 2 a duplicate group, 2 and 3 an image: one unit
    image_ids = ["a" * 64, "a" * 64, "b" * 64, "b" * 64, "c" * 64]
    group_ids = ["g0", "g1", "g1", "g3", "g4"]
    keys = split_keys(image_ids, group_ids)
    assert keys[:4] == ["a" * 64] * 4 and keys[4] == "c" * 64


def test_realised_ratio_is_within_one_point_on_ten_thousand_ids():
    image_ids = [image_id_for(f"id-{k}") for k in range(10_000)]
    for ratio in (0.1, 0.25, 0.5):
        sides = assign_sides(image_ids, image_ids, test_ratio=ratio)
        assert sides.count("test") / len(sides) == pytest.approx(ratio, abs=0.01)


def test_adding_images_never_moves_an_existing_face():
    face_ids, image_ids, group_ids = synthetic(500, seed=2)
    before = dict(zip(face_ids, assign_sides(image_ids, group_ids, 0.2)))
    more_faces, more_images, more_groups = synthetic(500, seed=3)
    # new images, new faces of existing images, and new copies joining existing groups of the same image
    more_faces += ["extra-0", "extra-1"]
    more_images += [image_ids[0], image_ids[5]]
    more_groups += ["extra-0", group_ids[5]]
    after = dict(zip(face_ids + more_faces, assign_sides(image_ids + more_images, group_ids + more_groups, 0.2)))
    assert all(after[f] == side for f, side in before.items())
    assert after["extra-0"] == before[face_ids[0]]


def test_the_same_faces_in_any_order_get_the_same_sides():
    face_ids, image_ids, group_ids = synthetic(800, seed=4)
    sides = dict(zip(face_ids, assign_sides(image_ids, group_ids, 0.2)))
    order = np.random.default_rng(0).permutation(len(face_ids))
    shuffled = assign_sides([image_ids[i] for i in order], [group_ids[i] for i in order], 0.2)
    assert {face_ids[i]: s for i, s in zip(order, shuffled)} == sides


def test_the_salt_draws_another_split_and_a_bigger_ratio_only_adds_to_test():
    image_ids = [image_id_for(f"id-{k}") for k in range(2000)]
    plain = assign_sides(image_ids, image_ids, 0.2)
    salted = assign_sides(image_ids, image_ids, 0.2, salt="second draw")
    assert plain != salted
    bigger = assign_sides(image_ids, image_ids, 0.3)
    assert all(b == "test" for p, b in zip(plain, bigger) if p == "test")
    assert set(assign_sides(image_ids, image_ids, 0.0)) == {"train"}


def test_side_of_is_a_fixed_function_of_key_salt_and_ratio():
    assert side_of("k", 0.5, "s") == side_of("k", 0.5, "s")
    assert side_of("k", 0.0) == "train" and side_of("k", 0.999999999) == "test"


def reference_keys(image_ids: list[str], group_ids: list[str]) -> list[str]:
    """The smallest image ID linked to each face, by a plain union-find over Python strings."""
    parent = list(range(len(image_ids)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for ids in (image_ids, group_ids):
        first: dict[str, int] = {}
        for i, key in enumerate(ids):
            parent[root(i)] = root(first.setdefault(key, i))
    smallest: dict[int, str] = {}
    for i, image_id in enumerate(image_ids):
        r = root(i)
        smallest[r] = min(smallest.get(r, image_id), image_id)
    return [smallest[root(i)] for i in range(len(image_ids))]


@pytest.mark.parametrize("piece_rows", [2, 4096])
def test_split_keys_equal_a_plain_union_find_whatever_the_piece_size(monkeypatch, piece_rows):
    # units of several images compare their IDs a piece at a time: tiny pieces split many units' rows
    from preprocess.split import sides

    monkeypatch.setattr(sides, "GATHER_ROWS", piece_rows)
    _, image_ids, group_ids = synthetic(600, seed=3, dup_share=0.4)
    assert split_keys(image_ids, group_ids) == reference_keys(image_ids, group_ids)
