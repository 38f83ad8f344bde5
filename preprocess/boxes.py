"""Face boxes ([x, y, w, h]) compared: overlap, one-to-one matching, size.

Shared by the faces stage (detections against ground truth) and the dedupe stage (the faces of
two reposted images).
"""

from __future__ import annotations

from collections.abc import Sequence


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two [x, y, w, h] boxes (0 when they do not touch)."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = min(ax + aw, bx + bw) - max(ax, bx)
    ih = min(ay + ah, by + bh) - max(ay, by)
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / (aw * ah + bw * bh - inter)


def match_boxes(found: Sequence[Sequence[float]], truth: Sequence[Sequence[float]], iou_threshold: float) -> list[tuple[int, int]]:
    """(found index, truth index) pairs, one-to-one, best IoU first, each with IoU >= threshold."""
    candidates = sorted(
        ((iou(f, t), i, j) for i, f in enumerate(found) for j, t in enumerate(truth)),
        key=lambda c: (-c[0], c[1], c[2]),
    )
    used_found: set[int] = set()
    used_truth: set[int] = set()
    pairs = []
    for overlap, i, j in candidates:
        if overlap < iou_threshold:
            break
        if i in used_found or j in used_truth:
            continue
        used_found.add(i)
        used_truth.add(j)
        pairs.append((i, j))
    return pairs


def face_side(box: Sequence[float]) -> float:
    """A face's size for size floors: the shorter side of its box."""
    return min(box[2], box[3])
