"""How good the detected faces are against known ground truth: precision and recall at an IoU.

A detection is a true positive when it overlaps a not-yet-matched true face with IoU >= the
threshold (pairs are matched greedily, best overlap first, so the result does not depend on
the order faces were listed in). With a size floor, true faces smaller than it are "don't care"
(as in COCO's size ranges): finding one is not a false positive and missing one is not a miss;
an unmatched detection smaller than the floor is likewise ignored.

Detections are compared in animeface's framing, which the demo's true boxes follow (`scored_box`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

from preprocess.boxes import face_side, match_boxes

# How much wider than animeface each other detector frames a face, on the same centre. The
# lbpcascade cascade's box also takes in the fringe and the cheeks: on the demo drawings its side
# is 1.5 times the true box's (median over 350 portraits, 1.47-1.60; centres within 3% of a side).
FRAMING_SCALE = {"cascade": 1.5}


def scored_box(face: Mapping) -> Sequence[float]:
    """The box a detection is scored with: its own, brought to animeface's framing (same centre).

    Without this a cascade detection of the right face fails IoU 0.5 by its framing alone, and
    counts as a miss and a false face at once.
    """
    scale = FRAMING_SCALE.get(face.get("detector", ""))
    if scale is None:
        return face["box"]
    x, y, w, h = face["box"]
    return (x + w * (1 - 1 / scale) / 2, y + h * (1 - 1 / scale) / 2, w / scale, h / scale)


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
    """Score (found faces, true faces) per image; faces are mappings with `box`, optional `detector` and colours.

    Precision with nothing found is 1.0 and recall with nothing to find is 1.0 (no mistake made).
    """
    n_images = truth_total = found_total = tp = fp = 0
    hair_hits = hair_seen = eye_hits = eye_seen = 0
    for found, truth in images:
        n_images += 1
        pairs = match_boxes([scored_box(f) for f in found], [t["box"] for t in truth], iou_threshold)
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
        fp += sum(1 for i, f in enumerate(found) if i not in matched_found and face_side(scored_box(f)) >= min_size)
        found_total += sum(1 for f in found if face_side(scored_box(f)) >= min_size)
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


# Which planted defect each quality filter is there to catch (crawler/demo/defects.py); text over
# a face has no filter of its own, and is reported so it can be seen what the others make of it.
FILTER_TARGETS = {"upscaled": "tiny", "cut_off": "cut_off", "monochrome": "monochrome", "blurry": "blurred"}


def filter_quality(images: Iterable[tuple[Sequence[Mapping], Sequence[Mapping], Sequence[Mapping]]], iou_threshold: float = 0.5, min_size: int = 0) -> dict:
    """Each quality filter's precision and recall on faces whose truth names a planted defect.

    Per image: (kept faces, faces a filter dropped with their `reason`, true faces with an optional
    `defect`); faces are mappings with a `box`. Only detections matched to a true face of at least
    `min_size` count: a filter is judged on real faces, not on the detector's mistakes.
    Precision: the share of the faces it dropped that carry its defect; recall: the share of the
    faces with its defect it dropped (None where there was nothing to share).
    """
    dropped: Counter = Counter()
    hits: Counter = Counter()
    with_defect: Counter = Counter()
    by_defect: dict[str, Counter] = defaultdict(Counter)
    for kept, filtered, truth in images:
        found = [(f, None) for f in kept] + [(f, f["reason"]) for f in filtered]
        for i, j in match_boxes([scored_box(f) for f, _ in found], [t["box"] for t in truth], iou_threshold):
            if face_side(truth[j]["box"]) < min_size:
                continue
            defect, reason = truth[j].get("defect") or "none", found[i][1]
            with_defect[defect] += 1
            by_defect[defect][reason or "kept"] += 1
            if reason is not None:
                dropped[reason] += 1
                hits[reason] += FILTER_TARGETS.get(reason) == defect
    filters = {}
    for reason, defect in FILTER_TARGETS.items():
        filters[reason] = {
            "defect": defect,
            "dropped": dropped[reason],
            "precision": _share(hits[reason], dropped[reason]),
            "recall": _share(hits[reason], with_defect[defect]),
        }
    return {"filters": filters, "faces_by_defect": {d: dict(sorted(c.items())) for d, c in sorted(by_defect.items())}}
