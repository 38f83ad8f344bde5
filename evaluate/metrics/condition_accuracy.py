"""Condition accuracy of a conditional (ACGAN) generator: do its faces have the colours asked for?

A small CNN learns hair and eye colour from the real training faces (the colour words the faces
stage wrote into the dataset index, folded into the checkpoint's vocabulary). It is scored on
the real test faces, next to the share of its majority class there (the chance level), so a
reader can see whether its verdicts are worth anything. Then it looks at the evaluation's
samples, generated for colours drawn uniformly from the checkpoint's vocabularies
(gan.conditions.encode_conditions), and says which show the colours asked for.

A generator that ignores its labels matches a uniformly drawn request with probability
1 / (number of colours), whatever it draws: that is the chance level of condition accuracy.
Everything is seeded from `evaluate.seed`, so the numbers are a pure function of the inputs.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from anigan.errors import UserError
from anigan.files import read_jsonl
from evaluate.metrics import EvalInputs, MetricResult, subset
from gan.conditions import ATTRIBUTES, Conditions, conditions_of, label_rows
from gan.runtime import derive_seed

log = logging.getLogger(__name__)

CLASSIFIER_SIDE = 32  # larger images are averaged down: flat colours survive it, and it keeps the CNN fast
UNKNOWN = -1  # label_rows' index for a colour the vocabulary cannot name (no `other` to fold it into)
PARTS = tuple(ATTRIBUTES)  # label columns: hair, eyes
LABEL_BLOCK = 10_000


def index_labels(dataset_dir: str | Path, split: str, count: int, conditions: Conditions) -> np.ndarray:
    """(N, 2) [hair, eyes] labels of `<dataset>/<split>.jsonl` (one row per image of `<split>.npy`) in a checkpoint's vocabularies."""
    path = Path(dataset_dir) / f"{split}.jsonl"
    if not path.is_file():
        raise UserError(f"{path}: no dataset index here; condition accuracy needs the split stage's colour words")
    # Labelled a block of rows at a time: a large split's index is never held as Python objects.
    parts, seen = [], 0
    records = read_jsonl(path)
    while block := list(itertools.islice(records, LABEL_BLOCK)):
        parts.append(label_rows(block, conditions))
        seen += len(block)
    if seen != count:
        raise UserError(f"{path}: {seen} rows for {count} images in {split}.npy; rerun the split stage")
    return np.concatenate(parts) if parts else np.zeros((0, len(PARTS)), np.int64)


def _as_input(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 (N, S, S, 3) -> float (N, 3, s, s) in [-1, 1] on `device`, s at most CLASSIFIER_SIDE."""
    batch = torch.from_numpy(np.array(images, copy=True)).to(device).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
    if batch.shape[-1] > CLASSIFIER_SIDE:
        batch = F.adaptive_avg_pool2d(batch, CLASSIFIER_SIDE)
    return batch


class ColourClassifier(nn.Module):
    """Faces (N, 3, s, s) in [-1, 1] -> hair and eye colour logits.

    Four small convolutions with batch norm (it learns the irises sooner: docs/evaluate.md), then
    both average and max pooling: the hair is most of the picture (the average sees it), the
    irises are a few pixels (the max finds them).
    """

    def __init__(self, hair_classes: int, eye_classes: int, width: int = 16) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for into, out, stride in ((3, width, 2), (width, 2 * width, 2), (2 * width, 4 * width, 2), (4 * width, 4 * width, 1)):
            layers += [nn.Conv2d(into, out, 3, stride, 1, bias=False), nn.BatchNorm2d(out), nn.ReLU(True)]
        self.features = nn.Sequential(*layers)
        self.hair = nn.Linear(8 * width, hair_classes)
        self.eyes = nn.Linear(8 * width, eye_classes)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.features(images)
        pooled = torch.cat([features.mean(dim=(2, 3)), features.amax(dim=(2, 3))], dim=1)
        return self.hair(pooled), self.eyes(pooled)


def _known_loss(logits: torch.Tensor, wanted: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over the rows whose colour is known (0 when none is)."""
    known = wanted != UNKNOWN
    return F.cross_entropy(logits[known], wanted[known]) if bool(known.any()) else logits.sum() * 0


def train_classifier(
    images: np.ndarray,
    labels: np.ndarray,
    classes: tuple[int, int],
    *,
    steps: int,
    batch_size: int,
    seed: int,
    device: torch.device,
    lr: float = 3e-3,
) -> ColourClassifier:
    """Fit a ColourClassifier to uint8 faces (N, S, S, 3) and their (N, 2) labels; UNKNOWN labels are ignored.

    Batches are drawn with replacement and flipped left-right at random (colours do not care);
    the weights and batches come from `seed` alone.
    """
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    known = labels >= 0
    if not known.any(axis=0).all():
        raise UserError("no training face has a hair or eye colour the checkpoint knows; evaluate the checkpoint on the dataset it was trained on")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        classifier = ColourClassifier(*classes).to(device)
    optimizer = torch.optim.Adam(classifier.parameters(), lr=lr)
    draws = torch.Generator().manual_seed(derive_seed(seed, "colour-batches"))
    classifier.train()
    for _ in range(steps):
        # Sorted, so a memory-mapped set is read front to back; the order within a batch does not matter.
        index = torch.randint(len(images), (batch_size,), generator=draws).sort().values.numpy()
        flip = torch.rand(batch_size, generator=draws) < 0.5
        batch = _as_input(images[index], device)
        batch = torch.where(flip.to(device)[:, None, None, None], batch.flip(3), batch)
        hair, eyes = classifier(batch)
        wanted = torch.from_numpy(labels[index]).to(device)
        loss = _known_loss(hair, wanted[:, 0]) + _known_loss(eyes, wanted[:, 1])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return classifier.eval()


@torch.no_grad()
def predict_colours(classifier: ColourClassifier, images: np.ndarray, device: torch.device, batch_size: int = 256) -> np.ndarray:
    """(N, 2) int64 predicted [hair, eyes] indices of uint8 faces (N, S, S, 3)."""
    out = []
    for start in range(0, len(images), batch_size):
        hair, eyes = classifier(_as_input(images[start : start + batch_size], device))
        out.append(torch.stack([hair.argmax(1), eyes.argmax(1)], dim=1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 2), np.int64)


def match_shares(predicted: np.ndarray, wanted: np.ndarray) -> dict[str, float]:
    """Share of rows whose hair, eyes, and both match, over the rows where that part is known."""
    shares = {}
    for j, part in enumerate(PARTS):
        known = wanted[:, j] >= 0
        shares[part] = float((predicted[known, j] == wanted[known, j]).mean()) if known.any() else float("nan")
    both = (wanted >= 0).all(axis=1)
    shares["both"] = float((predicted[both] == wanted[both]).all(axis=1).mean()) if both.any() else float("nan")
    return shares


def majority_shares(labels: np.ndarray) -> dict[str, float]:
    """Share of the most common hair, eyes, and (hair, eyes) pair: what always answering it would score."""
    shares = {}
    for j, part in enumerate(PARTS):
        known = labels[labels[:, j] >= 0, j]
        shares[part] = float(np.bincount(known).max() / len(known)) if len(known) else float("nan")
    pairs = labels[(labels >= 0).all(axis=1)]
    shares["both"] = float(np.unique(pairs, axis=0, return_counts=True)[1].max() / len(pairs)) if len(pairs) else float("nan")
    return shares


@dataclass(frozen=True)
class ConditionAccuracy:
    """The classifier's trust figures on real test faces and the generator's condition accuracy."""

    classifier_test: dict[str, float]  # hair / eyes / both accuracy on real test faces
    classifier_majority: dict[str, float]  # the same for always answering the test split's majority
    condition: dict[str, float]  # share of generated faces showing the requested hair / eyes / both
    condition_chance: dict[str, float]  # what a generator ignoring its labels scores: 1 / colours

    def metrics(self) -> dict[str, float]:
        """Flat metrics.json keys, e.g. condition_accuracy_hair, colour_classifier_test_eyes."""
        out: dict[str, float] = {}
        for name, shares in (
            ("condition_accuracy", self.condition),
            ("condition_chance", self.condition_chance),
            ("colour_classifier_test", self.classifier_test),
            ("colour_classifier_majority", self.classifier_majority),
        ):
            out.update({f"{name}_{part}": value for part, value in shares.items() if np.isfinite(value)})
        return out


def chance_of_requests(conditions: Mapping[str, Sequence[str]]) -> dict[str, float]:
    """Condition accuracy of a generator that ignores its labels, for uniformly drawn requests."""
    hair, eyes = (len(conditions[part]) for part in PARTS)
    return {"hair": 1 / hair, "eyes": 1 / eyes, "both": 1 / (hair * eyes)}


def score_conditions(
    samples: np.ndarray,
    requested: np.ndarray,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    conditions: Mapping[str, Sequence[str]],
    *,
    steps: int,
    batch_size: int,
    seed: int,
    device: torch.device,
) -> ConditionAccuracy:
    """Train the colour classifier on `train` (images, labels), check it on `test`, and score `samples`
    generated for the (N, 2) `requested` label indices."""
    classes = tuple(len(conditions[part]) for part in PARTS)
    log.info("colour classifier: %d steps on %d training faces (%d hair, %d eye colours)", steps, len(train[0]), *classes)
    classifier = train_classifier(*train, classes, steps=steps, batch_size=batch_size, seed=seed, device=device)  # type: ignore[arg-type]
    test_images, test_labels = test
    return ConditionAccuracy(
        classifier_test=match_shares(predict_colours(classifier, test_images, device, batch_size), test_labels),
        classifier_majority=majority_shares(test_labels),
        condition=match_shares(predict_colours(classifier, samples, device, batch_size), np.asarray(requested)),
        condition_chance=chance_of_requests(conditions),
    )


def score(inputs: EvalInputs) -> MetricResult:
    """ACGAN checkpoints: whether samples show the colours asked; nothing for a DCGAN. `details` is the ConditionAccuracy."""
    conditions = conditions_of(inputs.meta)
    if conditions is None or inputs.labels is None:
        return MetricResult({})
    p = inputs.params
    train = inputs.train
    # The classifier's test accuracy from a seeded subset of a large test split.
    test_rows = subset(len(inputs.test), p.real_test_images, p.seed)
    accuracy = score_conditions(
        inputs.samples,
        inputs.labels.numpy(),
        (train, index_labels(inputs.dataset, "train", len(train), conditions)),
        (inputs.test[test_rows], index_labels(inputs.dataset, "test", len(inputs.test), conditions)[test_rows]),
        conditions,
        steps=p.classifier_steps,
        batch_size=p.classifier_batch_size,
        seed=p.seed,
        device=inputs.device,
    )
    return MetricResult(accuracy.metrics(), details=accuracy)
