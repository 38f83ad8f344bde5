"""One raw image through the faces stage: load, detect, select, crop, name colours, save crops.

This is the unit of work a pool worker runs. It reads the image from its raw shard and returns
everything the stage needs to know about it as one record (faces and rejects) plus the encoded
crops, which the stage's one shard writer stores (tar shards take one writer).
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

from PIL import Image

from anigan.ids import face_id
from anigan.images import png_bytes
from anigan.params.faces import FacesParams
from preprocess.faces.colors import describe_face
from preprocess.faces.crop import square_crop
from preprocess.faces.detect import Detection, Detector, make_detector, select_faces
from preprocess.faces.filters import check_face
from preprocess.faces.framing import cut_face, frame_face, measure_face
from preprocess.imageio import ImageRejected, load_rgb, read_encoded

CROPS = "crops"  # the record's face ID -> PNG bytes, taken out by the stage before it is saved


@dataclass(frozen=True)
class ImageTask:
    """What a worker needs about one raw image: its ID, its raw manifest record's place
    (`shard`, `offset`, `bytes`) in the raw shards folder, its tags."""

    image_id: str
    shards: str
    place: tuple[tuple[str, object], ...]
    tags: tuple[str, ...]


def detect_at_most(detector: Detector, image: Image.Image, max_side: int) -> list[Detection]:
    """Detect on a copy shrunk to `max_side` (0: the image itself); boxes come back in source pixels."""
    longest = max(image.size)
    if not max_side or longest <= max_side:
        return detector.detect(image)
    scale = max_side / longest
    small = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.Resampling.BOX)
    return [
        dataclasses.replace(
            d,
            box=tuple(round(v / scale) for v in d.box),  # type: ignore[arg-type]
            eyes=None if d.eyes is None else tuple((x / scale, y / scale) for x, y in d.eyes),  # type: ignore[arg-type]
        )
        for d in detector.detect(small)
    ]


def _eyes(d: Detection, detector: Detector, image: Image.Image, params: FacesParams):
    """(eyes, where from) for alignment: the detector's, animeface's inside the box, or none."""
    if not params.align:
        return None, "none"
    if d.eyes is not None:
        return d.eyes, "eyes"
    finder = getattr(detector, "eyes_in_box", None)  # `both` can look again; a bare cascade cannot
    eyes = finder(image, d.box) if finder else None
    return eyes, ("eyes_in_box" if eyes else "none")


def process_image(task: ImageTask, params: FacesParams, detector: Detector) -> dict:
    """Detect and crop the faces of one image; returns {"image_id", "faces": [...], "rejects": [...], CROPS: {...}}.

    `faces` are manifest records (docs/architecture.md: face_id, image_id, box, crop, score, detector,
    hair_color, eye_color, plus colors_from); `rejects` say why an image or a face gave no crop.
    """
    record: dict = {"image_id": task.image_id, "faces": [], "rejects": [], CROPS: {}}

    def reject(reason: str, detail: str, face: Detection | None = None) -> None:
        entry = {"image_id": task.image_id, "reason": reason, "detail": detail}
        if face is not None:  # the detector too: each frames faces its own way (quality.scored_box)
            entry["box"], entry["detector"] = list(face.box), face.found_by or detector.name
        record["rejects"].append(entry)

    try:
        image = load_rgb(read_encoded(task.shards, dict(task.place), task.image_id), params.max_pixels)
    except ImageRejected as e:
        reject(e.reason, e.detail)
        return record
    found = detect_at_most(detector, image, params.detect_max_side)
    if not found:
        reject("no_face", f"{detector.name} found no face")
        return record
    kept, dropped = select_faces(found, params)
    for d, reason, detail in dropped:
        reject(reason, detail, d)
    placed = []
    for d in kept:
        crop = square_crop(d.box, params.margin, image.size, params.border)
        if crop is None:
            reject("at_border", "the crop would pass the image edge (faces.border: skip)", d)
            continue
        fid = face_id(task.image_id, crop)
        if any(p[1] == fid for p in placed):
            reject("duplicate_crop", f"same crop as face {fid}", d)
            continue
        placed.append((d, fid, crop))
    framed = []
    for d, fid, crop in placed:
        eyes, eyes_from = _eyes(d, detector, image, params)
        framing = frame_face(d.box, crop, eyes, eyes_from, params.margin, params.size)
        measures = measure_face(image, d.box, framing, params.margin, params.size)
        verdict = check_face(measures, task.tags, params)
        if verdict is not None:
            reject(*verdict, d)
            continue
        framed.append((d, fid, crop, framing, measures))
    for d, fid, crop, framing, measures in framed:
        hair, eyes, source = describe_face(task.tags, len(framed), d.hair_rgb, d.eye_rgb)
        record[CROPS][fid] = png_bytes(cut_face(image, crop, framing, params.size))
        record["faces"].append(
            {
                "face_id": fid,
                "image_id": task.image_id,
                "box": list(d.box),
                "crop": list(crop),
                "score": d.score,
                "detector": d.found_by or detector.name,
                "hair_color": hair,
                "eye_color": eyes,
                "colors_from": source,
                "transform": framing.transform,
                "aligned_by": framing.aligned_by,
                "measures": measures.as_dict(),
            }
        )
    return record


@functools.lru_cache(maxsize=1)
def _worker_detector(params: FacesParams) -> Detector:
    # Built once per worker process (a cascade loads its XML, animeface its model) and reused.
    return make_detector(params)


def work(task: ImageTask, params: FacesParams) -> dict:
    """Pool entry point: process one image with this process's detector."""
    return process_image(task, params, _worker_detector(params))
