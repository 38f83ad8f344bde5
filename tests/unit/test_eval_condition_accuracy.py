"""Condition accuracy: the colour classifier learns demo faces well above chance, and the metric tells a
generator that follows its labels from one that ignores them.

The generators here are honest stand-ins, not mocks: they return real demo faces (from a demo site the
classifier never saw) with the colours asked for, or with any colours. That tests the metric itself;
tests/stages/test_evaluate_conditions.py scores a really trained ACGAN.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from tests.conftest import make_demo_face_dataset
from evaluate.metrics.condition_accuracy import (
    UNKNOWN,
    chance_of_requests,
    index_labels,
    majority_shares,
    match_shares,
    predict_colours,
    score_conditions,
    train_classifier,
)
from gan.conditions import color_vocabularies, encode_conditions, label_rows
from gan.samples import fixed_noise, generate

CPU = torch.device("cpu")
STEPS, BATCH = 150, 32  # enough for the demo's flat colours; a few seconds on two cores


def _split(folder, name, conditions):
    images = np.load(folder / f"{name}.npy")
    return images, index_labels(folder, name, len(images), conditions)


@pytest.fixture(scope="module")
def demo_faces(tmp_path_factory):
    """(conditions, train, test, pool): real demo faces at 32 px; the pool comes from another demo site."""
    root = tmp_path_factory.mktemp("condition_accuracy")
    dataset = make_demo_face_dataset(root / "dataset", posts=300, size=32)
    rows = [json.loads(line) for line in (dataset / "train.jsonl").read_text().splitlines()]
    conditions = color_vocabularies(rows, min_count=5)
    pool_folder = make_demo_face_dataset(root / "pool", posts=200, size=32, seed=1)
    pool = _split(pool_folder, "train", conditions)
    return conditions, _split(dataset, "train", conditions), _split(dataset, "test", conditions), pool


@pytest.fixture(scope="module")
def classifier(demo_faces):
    _, train, _, _ = demo_faces
    classes = tuple(int(train[1][:, j].max()) + 1 for j in range(2))
    conditions = demo_faces[0]
    assert classes == (len(conditions["hair"]), len(conditions["eyes"]))
    return train_classifier(*train, classes, steps=STEPS, batch_size=BATCH, seed=0, device=CPU)


class FacesOfTheColoursAsked(nn.Module):
    """A stand-in for a perfect ACGAN: for each label, a real face with those colours (noise picks which).

    With `follow_labels=False` it is a generator that ignores its labels: any face of the pool.
    A request no pool face fits exactly gets a face with the hair asked for.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, follow_labels: bool = True) -> None:
        super().__init__()
        self.images = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
        self.labels = torch.from_numpy(labels)
        self.follow_labels = follow_labels

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        picks = []
        for noise, wanted in zip(z, labels.cpu()):
            candidates = torch.arange(len(self.labels))
            if self.follow_labels:
                exact = (self.labels == wanted).all(dim=1).nonzero().flatten()
                candidates = exact if len(exact) else (self.labels[:, 0] == wanted[0]).nonzero().flatten()
            picks.append(candidates[int(noise.abs().sum().item() * 1000) % len(candidates)])
        return self.images[torch.stack(picks)].to(z.device)


def _samples(generator, conditions, count=256, seed=0):
    meta = {"model": "acgan", "conditions": conditions}
    labels = encode_conditions(meta, None, None, count, seed)
    return generate(generator, fixed_noise(count, 8, seed), CPU, 64, labels=labels), labels.numpy()


@pytest.mark.slow
def test_the_classifier_names_real_test_faces_far_above_chance(demo_faces, classifier):
    _, _, (images, labels), _ = demo_faces
    accuracy = match_shares(predict_colours(classifier, images, CPU), labels)
    chance = majority_shares(labels)
    assert len(images) >= 30
    assert chance["hair"] < 0.3 and chance["eyes"] < 0.3  # many colours, none dominant
    assert accuracy["hair"] >= 0.9 and accuracy["eyes"] >= 0.6
    assert accuracy["both"] >= chance["both"] + 0.5


@pytest.mark.slow
def test_condition_accuracy_is_high_for_faces_of_the_colours_asked_and_near_chance_when_labels_are_ignored(demo_faces, classifier):
    conditions, _, _, pool = demo_faces
    chance = chance_of_requests(conditions)
    follows, asked = _samples(FacesOfTheColoursAsked(*pool), conditions)
    ignores, asked_again = _samples(FacesOfTheColoursAsked(*pool, follow_labels=False), conditions)
    assert np.array_equal(asked, asked_again)

    following = match_shares(predict_colours(classifier, follows, CPU), asked)
    ignoring = match_shares(predict_colours(classifier, ignores, CPU), asked)
    assert following["hair"] >= 0.85 and following["eyes"] >= 0.5 and following["both"] >= 0.4
    # 256 requests: the share of an ignoring generator lies within a few standard errors (~0.02) of chance.
    for part in ("hair", "eyes"):
        assert abs(ignoring[part] - chance[part]) < 0.08
    assert ignoring["both"] < 0.05


def test_score_conditions_reports_trust_and_chance_beside_the_accuracy_and_is_deterministic(demo_faces):
    conditions, train, test, pool = demo_faces
    samples, asked = _samples(FacesOfTheColoursAsked(*pool), conditions, count=64)
    args = (samples, asked, train, test, conditions)
    first = score_conditions(*args, steps=10, batch_size=BATCH, seed=3, device=CPU)
    again = score_conditions(*args, steps=10, batch_size=BATCH, seed=3, device=CPU)
    assert first == again
    metrics = first.metrics()
    assert set(metrics) == {
        f"{name}_{part}"
        for name in ("condition_accuracy", "condition_chance", "colour_classifier_test", "colour_classifier_majority")
        for part in ("hair", "eyes", "both")
    }
    assert metrics["condition_chance_hair"] == 1 / len(conditions["hair"])
    assert metrics["condition_chance_both"] == pytest.approx(1 / (len(conditions["hair"]) * len(conditions["eyes"])))
    assert metrics["colour_classifier_majority_hair"] == majority_shares(test[1])["hair"]
    assert all(0 <= v <= 1 for v in metrics.values())


def test_shares_skip_faces_whose_colour_the_vocabulary_cannot_name():
    wanted = np.array([[0, 1], [1, UNKNOWN], [UNKNOWN, 0], [2, 2]])
    predicted = np.array([[0, 1], [0, 0], [1, 0], [2, 1]])
    assert match_shares(predicted, wanted) == {"hair": 2 / 3, "eyes": 2 / 3, "both": 1 / 2}
    assert majority_shares(wanted) == {"hair": 1 / 3, "eyes": 1 / 3, "both": 1 / 2}


def test_labels_fold_rare_and_missing_colours_into_other_like_the_checkpoint():
    conditions = {"hair": ["blue", "red", "other"], "eyes": ["green", "red"]}
    rows = [
        {"hair_color": "blue", "eye_color": "green"},
        {"hair_color": "pink", "eye_color": "red"},  # rare hair: folded into other
        {"hair_color": None, "eye_color": "aqua"},  # unnamed hair: other; eyes without `other`: unknown
    ]
    assert label_rows(rows, conditions).tolist() == [[0, 0], [2, 1], [2, UNKNOWN]]


def test_a_dataset_index_that_does_not_match_its_images_is_one_clear_error(tmp_path):
    from anigan.errors import UserError

    (tmp_path / "test.jsonl").write_text(json.dumps({"hair_color": "blue", "eye_color": "red"}) + "\n")
    with pytest.raises(UserError, match="1 rows for 2 images in test.npy"):
        index_labels(tmp_path, "test", 2, {"hair": ["blue"], "eyes": ["red"]})
    with pytest.raises(UserError, match="no dataset index"):
        index_labels(tmp_path, "train", 2, {"hair": ["blue"], "eyes": ["red"]})
