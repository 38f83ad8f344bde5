"""The faces stage: raw images -> square face crops, a manifest, rejects, quality metrics.

Reads `<paths.raw>/manifest.jsonl` and `images/`, writes under `<paths.faces>`:

- `images/<face_id>.png`: square RGB crops at `faces.size`;
- `manifest.jsonl`: one record per face, in raw-manifest order (whatever the number of workers);
- `rejects.jsonl`: images and faces that gave no crop, with a reason;
- `faces.json`: counts, and precision/recall at IoU >= 0.5 when `<paths.raw>/ground_truth.jsonl`
  exists (the demo booru's);
- `contact_sheet.png`: a seeded random sample of crops;
- `state.jsonl`: which images were processed under which detection key (see `detection_key`).
  Each finished image is appended (fsynced) as it completes, so a killed run resumes where it
  stopped, and a rerun only processes images it has not seen with the same settings.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

from anigan.errors import UserError
from anigan.files import append_jsonl, atomic_write_bytes, read_jsonl, write_json, write_jsonl
from anigan.ids import file_sha256
from anigan.images import png_bytes
from anigan.params import Params
from anigan.params.faces import FacesParams
from anigan.workers import resolve_workers
from preprocess import imageio
from preprocess.faces import colors, crop, detect, image
from preprocess.faces.contact_sheet import contact_sheet, pick_faces
from preprocess.faces.detect import open_detector
from preprocess.faces.image import ImageTask, process_image, work
from preprocess.faces.quality import detection_quality

log = logging.getLogger(__name__)

IMAGES = "images"
MANIFEST = "manifest.jsonl"
REJECTS = "rejects.jsonl"
SUMMARY = "faces.json"
SHEET = "contact_sheet.png"
STATE = "state.jsonl"
IOU_THRESHOLD = 0.5
# The size floor the project's quality target is stated for ("recall >= 0.8 on faces >= 64 px").
QUALITY_FLOOR = 64
# Settings that do not change any crop: changing them must not reprocess anything.
_NOT_IN_KEY = ("workers", "seed", "sheet_faces")
# Modules whose code decides what a crop looks like: editing them reprocesses everything.
_CROP_CODE = (crop, detect, colors, image, imageio)

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class FacesSummary:
    """What a faces run did; `quality` holds precision/recall when ground truth was found."""

    detector: str
    images: int
    processed: int
    reused: int
    faces: int
    images_with_faces: int
    rejects: dict[str, int]
    quality: dict | None
    output: str
    workers: int

    def as_dict(self) -> dict:
        return asdict(self)


def detection_key(params: FacesParams) -> str:
    """A hash of everything that decides the crops: params (not workers), cascade bytes, crop code."""
    h = hashlib.sha256()
    settings = {k: v for k, v in asdict(params).items() if k not in _NOT_IN_KEY}
    if params.detector == "cascade" and params.cascade_path:
        # The file's content, not its path: the same cascade elsewhere is the same detector.
        settings["cascade_path"] = file_sha256(params.cascade_path)
    else:
        settings.pop("cascade_path")
        settings.pop("cascade_neighbors")
    h.update(json.dumps(settings, sort_keys=True).encode())
    for module in _CROP_CODE:
        h.update(Path(module.__file__).read_bytes())
    return h.hexdigest()[:16]


def read_raw_manifest(raw: Path) -> list[dict]:
    """The raw manifest's records, one per image ID (the first listing wins), in file order."""
    path = raw / "manifest.jsonl"
    if not path.is_file():
        raise UserError(f"{path}: no raw manifest; run `anigan crawl` first (or point paths.raw at a crawl output)")
    seen: dict[str, dict] = {}
    n = 0
    try:
        for n, rec in enumerate(read_jsonl(path), 1):
            image_id = rec.get("image_id") if isinstance(rec, dict) else None
            if not isinstance(image_id, str) or len(image_id) < 3:
                raise UserError(f"{path}: line {n} has no image_id")
            seen.setdefault(image_id, rec)
    except ValueError as e:
        raise UserError(f"{path}: line {n + 1} is not valid JSON ({e})") from None
    return list(seen.values())


def post_tags(record: dict) -> tuple[str, ...]:
    """A raw record's tags as a tuple (a list by contract; a space-separated string is accepted too)."""
    tags = record.get("tags") or ()
    return tuple(tags.split()) if isinstance(tags, str) else tuple(str(t) for t in tags)


def read_state(path: Path, key: str) -> dict[str, dict]:
    """Image ID -> record for images already processed under `key`; other keys are forgotten."""
    done: dict[str, dict] = {}
    stale = 0
    try:
        for rec in read_jsonl(path, missing_ok=True):
            if rec.get("key") == key:
                done[rec["image_id"]] = rec
            else:
                stale += 1
    except (ValueError, KeyError, AttributeError) as e:
        # only a damaged state file gets here (a killed write tears just the last line, which is skipped)
        log.warning("%s is damaged (%s): processing every image again", path, e)
        return {}
    if stale:
        log.info("detection settings changed since %d earlier records: reprocessing those images", stale)
    return done


# Imported once in the fork server, so each worker starts with the detector code loaded.
_WORKER_PRELOAD = ["preprocess.faces.image"]


def pool_context() -> multiprocessing.context.BaseContext:
    """forkserver where the OS has it, spawn elsewhere; never a plain fork.

    The parent runs threads (the progress bar, logging) while the pool starts, and forking a
    threaded process can copy a lock held by another thread into the child. A fork server is a
    fresh single-threaded process that forks the workers, and with the detector modules
    preloaded there a worker does not import numpy, OpenCV and animeface again.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_WORKER_PRELOAD)
    return context


def _process_all(tasks: list[ImageTask], params: FacesParams, images_dir: Path, workers: int, on_result: Callable[[dict], None]) -> None:
    """Run every task, inline for one worker, else in a process pool (results as they finish)."""
    if workers <= 1:
        detector = detect.make_detector(params)
        for task in tasks:
            on_result(process_image(task, params, detector, images_dir))
        return
    with pool_context().Pool(workers) as pool:
        for record in pool.imap_unordered(partial(work, params=params, images_dir=str(images_dir)), tasks):
            on_result(record)


def _quality(raw: Path, records: list[dict], params: FacesParams) -> dict | None:
    """Precision/recall against raw/ground_truth.jsonl, over the images that decoded."""
    truth_path = raw / "ground_truth.jsonl"
    if not truth_path.is_file():
        return None
    try:
        truth = {r["image_id"]: r.get("faces", []) for r in read_jsonl(truth_path) if "image_id" in r}
    except (ValueError, AttributeError) as e:
        log.warning("%s is not valid ground truth (%s): no precision/recall this run", truth_path, e)
        return None
    undecodable = set(imageio.REJECT_REASONS)
    pairs = [
        (rec["faces"], truth[rec["image_id"]])
        for rec in records
        if rec["image_id"] in truth and not any(r["reason"] in undecodable for r in rec["rejects"])
    ]
    at_stage = detection_quality(pairs, IOU_THRESHOLD, params.min_face_size).as_dict()
    at_floor = detection_quality(pairs, IOU_THRESHOLD, max(QUALITY_FLOOR, params.min_face_size)).as_dict()
    at_stage[f"ge{QUALITY_FLOOR}px"] = {k: at_floor[k] for k in ("min_size", "truth_faces", "true_positives", "false_positives", "precision", "recall")}
    return {params.detector: at_stage}


def _write_sheet(out: Path, faces: list[dict], params: FacesParams) -> None:
    picked = pick_faces([f["face_id"] for f in faces], params.sheet_faces, params.seed)
    sheet = contact_sheet([out / IMAGES / f"{fid}.png" for fid in picked], tile=min(params.size, 96))
    atomic_write_bytes(out / SHEET, png_bytes(sheet))


def _remove_stale_crops(images_dir: Path, keep: set[str]) -> int:
    """Delete crops no manifest record names (old settings, removed images) and torn temp files."""
    removed = 0
    for p in images_dir.iterdir():
        if p.is_file() and (p.name.startswith(".") or p.stem not in keep):
            p.unlink()
            removed += 1
    return removed


def run_faces(params: Params, on_progress: Progress | None = None) -> FacesSummary:
    """Detect, crop and describe the faces of every raw image; see the module docstring for outputs."""
    fp = params.faces
    raw, out = Path(params.paths.raw), Path(params.paths.faces)
    raw_records = read_raw_manifest(raw)
    open_detector(fp)  # start-up checks in this process: fail once, clearly, before any work
    key = detection_key(fp)
    images_dir = out / IMAGES
    images_dir.mkdir(parents=True, exist_ok=True)
    state_path = out / STATE

    done = read_state(state_path, key)
    # an image whose crops went missing (deleted by hand, a partial checkout) is done again
    done = {i: rec for i, rec in done.items() if all((images_dir / f"{f['face_id']}.png").is_file() for f in rec["faces"])}
    files = imageio.find_raw_files(raw, [r["image_id"] for r in raw_records])
    todo = [
        ImageTask(r["image_id"], files.get(r["image_id"]), post_tags(r))
        for r in raw_records
        if r["image_id"] not in done
    ]
    workers = resolve_workers(fp.workers, len(todo))
    log.info("faces: %d images, %d already done, %d to process with %d worker(s)", len(raw_records), len(raw_records) - len(todo), len(todo), workers)

    finished = 0

    def on_result(record: dict) -> None:
        nonlocal finished
        record["key"] = key
        append_jsonl(state_path, [record])
        done[record["image_id"]] = record
        finished += 1
        if on_progress:
            on_progress(finished, len(todo))

    if on_progress:
        on_progress(0, len(todo))
    _process_all(todo, fp, images_dir, workers, on_result)

    # Assemble in raw-manifest order: the output never depends on which worker finished first.
    records = [done[r["image_id"]] for r in raw_records]
    faces = [f for rec in records for f in rec["faces"]]
    rejects = [r for rec in records for r in rec["rejects"]]
    write_jsonl(out / MANIFEST, faces)
    write_jsonl(out / REJECTS, rejects)
    write_jsonl(state_path, records)  # compact: only current images under the current key
    removed = _remove_stale_crops(images_dir, {f["face_id"] for f in faces})
    if removed:
        log.info("faces: removed %d crops no longer in the manifest", removed)

    quality = _quality(raw, records, fp)
    summary = FacesSummary(
        detector=fp.detector,
        images=len(records),
        processed=len(todo),
        reused=len(records) - len(todo),
        faces=len(faces),
        images_with_faces=sum(1 for rec in records if rec["faces"]),
        rejects=dict(sorted(Counter(r["reason"] for r in rejects).items())),
        quality=quality,
        output=str(out),
        workers=workers,
    )
    metrics = {k: v for k, v in summary.as_dict().items() if k not in ("output", "workers", "processed", "reused")}
    write_json(out / SUMMARY, metrics)
    _write_sheet(out, faces, fp)
    return summary
