"""How good the detected faces are against known ground truth: precision and recall at an IoU.

A detection is a true positive when it overlaps a not-yet-matched true face with IoU >= the
threshold (pairs are matched greedily, best overlap first, so the result does not depend on
the order faces were listed in). With a size floor, true faces smaller than it are "don't care"
(as in COCO's size ranges): finding one is not a false positive and missing one is not a miss;
an unmatched detection smaller than the floor is likewise ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

from preprocess.boxes import face_side, match_boxes


@dataclass(frozen=True)
class DetectionQuality:
    """Precision/recall of found faces against true ones, with colour agreement on the matches."""

    iou_threshold: float
    min_size: int
    images: int
    truth_faces: int
    found_faces: int
    true_positives: int
    false_positives: int
    precision: float
    recall: float
    hair_accuracy: float | None
    eye_accuracy: float | None

    def as_dict(self) -> dict:
        return asdict(self)


def _share(hits: int, total: int) -> float | None:
    return round(hits / total, 4) if total else None


def detection_quality(
    images: Iterable[tuple[Sequence[Mapping], Sequence[Mapping]]],
    iou_threshold: float = 0.5,
    min_size: int = 0,
) -> DetectionQuality:
    """Score (found faces, true faces) per image; faces are mappings with `box` and optional colours.

    Precision with nothing found is 1.0 and recall with nothing to find is 1.0 (no mistake made).
    """
    n_images = truth_total = found_total = tp = fp = 0
    hair_hits = hair_seen = eye_hits = eye_seen = 0
    for found, truth in images:
        n_images += 1
        pairs = match_boxes([f["box"] for f in found], [t["box"] for t in truth], iou_threshold)
        matched_found = {i for i, _ in pairs}
        counted_truth = [t for t in truth if face_side(t["box"]) >= min_size]
        truth_total += len(counted_truth)
        for i, j in pairs:
            if face_side(truth[j]["box"]) < min_size:
                continue  # a found "don't care" face: neither right nor wrong
            tp += 1
            for key in ("hair_color", "eye_color"):
                if found[i].get(key) is not None and truth[j].get(key) is not None:
                    hit = found[i][key] == truth[j][key]
                    if key == "hair_color":
                        hair_seen, hair_hits = hair_seen + 1, hair_hits + hit
                    else:
                        eye_seen, eye_hits = eye_seen + 1, eye_hits + hit
        fp += sum(1 for i, f in enumerate(found) if i not in matched_found and face_side(f["box"]) >= min_size)
        found_total += sum(1 for f in found if face_side(f["box"]) >= min_size)
    return DetectionQuality(
        iou_threshold=iou_threshold,
        min_size=min_size,
        images=n_images,
        truth_faces=truth_total,
        found_faces=found_total,
        true_positives=tp,
        false_positives=fp,
        precision=_share(tp, tp + fp) if tp + fp else 1.0,
        recall=_share(tp, truth_total) if truth_total else 1.0,
        hair_accuracy=_share(hair_hits, hair_seen),
        eye_accuracy=_share(eye_hits, eye_seen),
    )
