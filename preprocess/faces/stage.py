"""The faces stage: raw images -> square face crops, a manifest, rejects, quality metrics.

Reads `<paths.raw>/manifest.jsonl` and the image shards it names, writes under `<paths.faces>`:

- `shards/faces-<NNNNNN>.tar`: square RGB crops at `faces.size`, members `<face_id>.png`
  (WebDataset layout, `faces.shard_size` a shard; anigan.shards);
- `manifest.jsonl`: one record per face, in raw-manifest order (whatever the number of workers),
  with `shard`, `offset`, `bytes` and `file_sha256` of its crop;
- `rejects.jsonl`: images and faces that gave no crop, with a reason;
- `faces.json`: counts, and precision/recall at IoU >= 0.5 when `<paths.raw>/ground_truth.jsonl`
  exists (the demo booru's);
- `contact_sheet.png`: a seeded random sample of crops;
- `state.jsonl`: which images were processed under which detection key (see `detection_key`).
  Finished images are appended in batches (their crops fsynced first, then their lines), so a
  killed run redoes at most the last batch, and a rerun only processes images it has not seen
  with the same settings.

Records are streamed: a 17-byte digest of each processed image's ID and the byte offset of its
state line wait in a sorted temporary file, looked up a raw chunk at a time through a sparse index
(preprocess.faces.ledger), not the records themselves; the images still to process wait in a
temporary file, and the contact sheet is chosen from 8 bytes a face.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import multiprocessing
import pickle
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np

from anigan.errors import UserError
from anigan.files import append_jsonl, atomic_write_bytes, atomic_writer, jsonl_bytes, read_jsonl, read_jsonl_at, read_jsonl_offsets, write_json
from anigan.ids import file_sha256, sha256_hex
from anigan.images import png_bytes
from anigan.keys import KeySet, short_digest
from anigan.params import Params
from anigan.params.faces import FacesParams
from anigan.shards import Member, ShardReader, ShardWriter, Usage, compact, cut_tail, remove_unused
from anigan.workers import resolve_workers
from preprocess import imageio
from preprocess.faces import align, colors, crop, detect, filters, framing, image
from preprocess.faces.contact_sheet import FacePick, contact_sheet
from preprocess.faces.detect import open_detector
from preprocess.faces.image import CROPS, ImageTask, process_image, work
from preprocess.faces.ledger import DIGEST, Done, Rows
from preprocess.faces.quality import FILTER_TARGETS, detection_quality, filter_quality

log = logging.getLogger(__name__)

SHARDS = "shards"
PREFIX = "faces"
RAW_SHARDS = "shards"  # the crawl's (docs/architecture.md)
# Finished images are saved in batches: one fsync of the shard and one of the state file per
# batch, not per image; a kill redoes at most one batch.
BATCH_IMAGES = 64
BATCH_SECONDS = 1.0
MANIFEST = "manifest.jsonl"
REJECTS = "rejects.jsonl"
SUMMARY = "faces.json"
SHEET = "contact_sheet.png"
STATE = "state.jsonl"
IOU_THRESHOLD = 0.5
RAW_CHUNK = 1024  # raw manifest records looked up at a time
# The size floor the project's quality target is stated for ("recall >= 0.8 on faces >= 64 px").
QUALITY_FLOOR = 64
# Settings that do not change any crop: changing them must not reprocess anything.
_NOT_IN_KEY = ("workers", "seed", "sheet_faces", "shard_size")
# Modules whose code decides what a crop looks like: editing them reprocesses everything.
_CROP_CODE = (align, crop, detect, colors, filters, framing, image, imageio)

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
    if params.detector in ("cascade", "both") and params.cascade_path:
        # The file's content, not its path: the same cascade elsewhere is the same detector.
        settings["cascade_path"] = file_sha256(params.cascade_path)
    else:
        settings.pop("cascade_path")
        settings.pop("cascade_neighbors")
    h.update(json.dumps(settings, sort_keys=True).encode())
    for module in _CROP_CODE:
        h.update(Path(module.__file__).read_bytes())
    return h.hexdigest()[:16]


def _raw_records(raw: Path) -> Iterator[dict]:
    """Every raw manifest record, reposts included, in file order, streamed."""
    path = raw / "manifest.jsonl"
    if not path.is_file():
        raise UserError(f"{path}: no raw manifest; run `anigan crawl` first (or point paths.raw at a crawl output)")
    n = 0
    try:
        for n, rec in enumerate(read_jsonl(path), 1):
            image_id = rec.get("image_id") if isinstance(rec, dict) else None
            if not isinstance(image_id, str) or len(image_id) < 3:
                raise UserError(f"{path}: line {n} has no image_id")
            yield rec
    except ValueError as e:
        raise UserError(f"{path}: line {n + 1} is not valid JSON ({e})") from None


def _raw_chunks(raw: Path) -> Iterator[tuple[list[dict], list[bytes]]]:
    """The raw records RAW_CHUNK at a time, each with its image ID's digest."""
    chunk: list[dict] = []
    for rec in _raw_records(raw):
        chunk.append(rec)
        if len(chunk) >= RAW_CHUNK:
            yield chunk, [short_digest(r["image_id"]) for r in chunk]
            chunk = []
    if chunk:
        yield chunk, [short_digest(r["image_id"]) for r in chunk]


def raw_images(raw: Path) -> Iterator[dict]:
    """The raw manifest's records, one per image ID (the first listing wins), in file order, streamed."""
    seen = KeySet(DIGEST)
    for rec in _raw_records(raw):
        if seen.add(short_digest(rec["image_id"])):
            yield rec


def post_tags(record: dict) -> tuple[str, ...]:
    """A raw record's tags as a tuple (a list by contract; a space-separated string is accepted too)."""
    tags = record.get("tags") or ()
    return tuple(tags.split()) if isinstance(tags, str) else tuple(str(t) for t in tags)


def read_state(path: Path, key: str, lengths: dict[str, int] | None = None) -> Done:
    """Image digest -> byte offset of its latest state line under `key`; other keys are forgotten.
    `Done.current` flags those lines by their number in the file (read_jsonl_offsets' order).

    With `lengths` (shard name -> bytes), an image whose crops are not all whole in their shards
    (lost with a killed batch, a partial checkout) is left out: it is processed again.
    """
    rows = Rows(path.parent if path.parent.is_dir() else None)
    stale = lost = 0
    try:
        for line, (offset, rec) in enumerate(read_jsonl_offsets(path, missing_ok=True)):
            if rec.get("key") != key:
                stale += 1
            elif lengths is not None and not all(_whole(f, lengths) for f in rec["faces"]):
                rows.append(short_digest(rec["image_id"]), offset, True, line)  # forgets the image, as a later line may not
                lost += 1
            else:
                rows.append(short_digest(rec["image_id"]), offset, False, line)
    except (ValueError, KeyError, AttributeError, TypeError) as e:
        # only a damaged state file gets here (a killed write tears just the last line, which is skipped)
        log.warning("%s is damaged (%s): processing every image again", path, e)
        rows.close()
        path.unlink()  # new lines must not follow a damaged one
        return Done()
    if stale:
        log.info("detection settings changed since %d earlier records: reprocessing those images", stale)
    if lost:
        log.info("faces: %d processed images lost crops from their shards: processing them again", lost)
    return Done.of(rows)


def _whole(face: dict, lengths: dict[str, int]) -> bool:
    member = Member.of(face)
    return member is not None and member.offset + member.bytes <= lengths.get(member.shard, -1)


def _shard_lengths(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in folder.glob(f"{PREFIX}-*.tar")} if folder.is_dir() else {}


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


def _process_all(tasks: Iterable[ImageTask], params: FacesParams, workers: int, on_result: Callable[[dict], None]) -> None:
    """Run every task, inline for one worker, else in a process pool (results as they finish)."""
    if workers <= 1:
        detector = detect.make_detector(params)
        for task in tasks:
            on_result(process_image(task, params, detector))
        return
    with pool_context().Pool(workers) as pool:
        for record in pool.imap_unordered(partial(work, params=params), tasks, chunksize=4):
            on_result(record)


def _truth(raw: Path) -> dict[str, list] | None:
    """image ID -> true face boxes from raw/ground_truth.jsonl (the demo booru's), or None."""
    truth_path = raw / "ground_truth.jsonl"
    if not truth_path.is_file():
        return None
    try:
        return {r["image_id"]: r.get("faces", []) for r in read_jsonl(truth_path) if "image_id" in r}
    except (ValueError, AttributeError) as e:
        log.warning("%s is not valid ground truth (%s): no precision/recall this run", truth_path, e)
        return None


def _quality(truth: dict[str, list] | None, records: list[dict], params: FacesParams) -> dict | None:
    """Precision/recall against the ground truth, over the images that decoded.

    The detector is scored on every face it found, those a quality filter dropped included (a
    dropped blurred face was still found); each filter is scored on the planted defects.
    """
    if truth is None:
        return None
    undecodable = set(imageio.REJECT_REASONS)
    decoded = [rec for rec in records if rec["image_id"] in truth and not any(r["reason"] in undecodable for r in rec["rejects"])]
    filtered = {rec["image_id"]: [r for r in rec["rejects"] if r["reason"] in FILTER_TARGETS and "box" in r] for rec in decoded}
    pairs = [(rec["faces"] + filtered[rec["image_id"]], truth[rec["image_id"]]) for rec in decoded]
    at_stage = detection_quality(pairs, IOU_THRESHOLD, params.min_face_size).as_dict()
    at_floor = detection_quality(pairs, IOU_THRESHOLD, max(QUALITY_FLOOR, params.min_face_size)).as_dict()
    at_stage[f"ge{QUALITY_FLOOR}px"] = {k: at_floor[k] for k in ("min_size", "truth_faces", "true_positives", "false_positives", "precision", "recall")}
    if any(face.get("defect") for faces in truth.values() for face in faces):
        triples = [(rec["faces"], filtered[rec["image_id"]], truth[rec["image_id"]]) for rec in decoded]
        at_stage.update(filter_quality(triples, IOU_THRESHOLD, params.min_face_size))  # "filters", "faces_by_defect"
    return {params.detector: at_stage}


def _write_sheet(out: Path, members: list[Member], params: FacesParams) -> None:
    """The contact sheet, its crops read straight from their shards (members in sheet order)."""
    with ShardReader(out / SHARDS) as reader:
        sheet = contact_sheet([io.BytesIO(reader.read(m)) for m in members], tile=min(params.size, 96))
    atomic_write_bytes(out / SHEET, png_bytes(sheet))


class _Saver:
    """Stores finished images: crops into the shards, then their state lines, a batch at a time."""

    def __init__(self, writer: ShardWriter, state_path: Path, key: str) -> None:
        self.writer, self.state_path, self.key = writer, state_path, key
        self.batch: list[dict] = []
        self.since = time.monotonic()

    def add(self, record: dict) -> None:
        crops = record.pop(CROPS, {})
        for face in record["faces"]:
            data = crops[face["face_id"]]
            face.update(self.writer.add(f"{face['face_id']}.png", data).fields(), file_sha256=sha256_hex(data))
        record["key"] = self.key
        self.batch.append(record)
        if len(self.batch) >= BATCH_IMAGES or time.monotonic() - self.since >= BATCH_SECONDS:
            self.save()

    def save(self) -> None:
        self.writer.flush()  # the crops before the lines that name them
        append_jsonl(self.state_path, self.batch)
        self.batch = []
        self.since = time.monotonic()


def run_faces(params: Params, on_progress: Progress | None = None) -> FacesSummary:
    """Detect, crop and describe the faces of every raw image; see the module docstring for outputs."""
    fp = params.faces
    raw, out = Path(params.paths.raw), Path(params.paths.faces)
    open_detector(fp)  # start-up checks in this process: fail once, clearly, before any work
    key = detection_key(fp)
    shards = out / SHARDS
    state_path = out / STATE
    shutil.rmtree(out / "images", ignore_errors=True)  # crops as files: the layout before shards

    done = read_state(state_path, key, _shard_lengths(shards))
    usage = Usage()
    if done:
        for line, (_, rec) in enumerate(read_jsonl_offsets(state_path)):
            if line < len(done.current) and done.current[line]:
                for face in rec["faces"]:
                    usage.add(Member.of(face))
    cut_tail(shards, PREFIX, usage)  # a killed batch's crops: no line names them
    del usage
    with tempfile.TemporaryFile(dir=out if out.is_dir() else None) as spill:
        # the images to do wait on disk, not in a list: a first run has every raw image to do
        todo = 0
        for task in _todo(raw, done):
            pickle.dump(task, spill)
            todo += 1
        images = len(done) + todo
        done.close()
        workers = resolve_workers(fp.workers, todo)
        log.info("faces: %d images, %d already done, %d to process with %d worker(s)", images, images - todo, todo, workers)
        spill.seek(0)

        finished = 0
        with ShardWriter(shards, PREFIX, fp.shard_size) as writer:
            saver = _Saver(writer, state_path, key)

            def on_result(record: dict) -> None:
                nonlocal finished
                saver.add(record)
                finished += 1
                if on_progress:
                    on_progress(finished, todo)

            if on_progress:
                on_progress(0, todo)
            try:
                _process_all(_unspill(spill, todo), fp, workers, on_result)
            finally:
                saver.save()  # what finished before an error or Ctrl-C is kept
    return _assemble(params, key, workers, processed=finished)


def _todo(raw: Path, done: Done) -> Iterator[ImageTask]:
    """A task for each raw image not done (the first listing wins), in raw-manifest order."""
    raw_shards = str(raw / RAW_SHARDS)
    seen = KeySet(DIGEST)
    for chunk, digests in _raw_chunks(raw):
        found, _ = done.find(np.array(digests, DIGEST))
        for r, digest, i in zip(chunk, digests, found.tolist(), strict=True):
            if i < 0 and seen.add(digest):
                yield ImageTask(r["image_id"], raw_shards, tuple((k, r.get(k)) for k in ("shard", "offset", "bytes")), post_tags(r))


def _unspill(spill, count: int) -> Iterator[ImageTask]:
    for _ in range(count):
        yield pickle.load(spill)


def _current_records(raw: Path, state_path: Path, done: Done) -> Iterator[dict]:
    """The state record of each raw image, in raw-manifest order (the output never depends on
    which worker finished first), read by offset from the state file."""
    listed = np.zeros(len(done), bool)  # a repost's image was listed before: the first listing wins
    with open(state_path, "rb") as state:
        for chunk, digests in _raw_chunks(raw):
            found, offsets = done.find(np.array(digests, DIGEST))
            for r, i, offset in zip(chunk, found.tolist(), offsets.tolist(), strict=True):
                if i < 0:
                    raise KeyError(r["image_id"])
                if not listed[i]:
                    listed[i] = True
                    yield read_jsonl_at(state, offset)


def _assemble(params: Params, key: str, workers: int, processed: int) -> FacesSummary:
    """Write manifest, rejects, a compacted state, the summary and the contact sheet, streaming
    the records twice: once to see which crops are current, once to write."""
    fp = params.faces
    raw, out = Path(params.paths.raw), Path(params.paths.faces)
    shards, state_path = out / SHARDS, out / STATE
    done = read_state(state_path, key)
    usage, pick = Usage(), FacePick()
    for rec in _current_records(raw, state_path, done):
        for face in rec["faces"]:
            usage.add(Member.of(face))
            pick.add(face["face_id"])
    # crops of old settings or removed images share shards with current ones: copy those out
    moved = compact(shards, PREFIX, usage, (Member.of(f) for rec in _current_records(raw, state_path, done) for f in rec["faces"]), fp.shard_size)
    pick.choose(fp.sheet_faces, fp.seed)  # contact_sheet.pick_faces, a rank at a time
    truth = _truth(raw)
    offered: list[tuple[str, Member]] = []
    scored: list[dict] = []
    usage = Usage()
    counts: Counter = Counter()
    rejects: Counter = Counter()
    with atomic_writer(out / MANIFEST) as manifest, atomic_writer(out / REJECTS) as rejected, atomic_writer(state_path) as state:
        for rec in _current_records(raw, state_path, done):
            for face in rec["faces"]:
                if (new := moved.get(Member.of(face))) is not None:
                    face.update(new.fields())
                usage.add(Member.of(face))
                if pick.offer(face["face_id"]):
                    offered.append((face["face_id"], Member.of(face)))
                manifest.write(jsonl_bytes(face))
            for r in rec["rejects"]:
                rejected.write(jsonl_bytes(r))
                rejects[r["reason"]] += 1
            state.write(jsonl_bytes(rec))  # compact: only current images under the current key
            counts["images"] += 1
            counts["faces"] += len(rec["faces"])
            counts["images_with_faces"] += bool(rec["faces"])
            if truth is not None and rec["image_id"] in truth:
                scored.append({k: rec[k] for k in ("image_id", "faces", "rejects")})
    done.close()
    picked = pick.picked()
    sheet = {face_id: member for face_id, member in offered if face_id in picked}
    removed = remove_unused(shards, PREFIX, usage)  # after the records naming their replacements
    if removed:
        log.info("faces: removed %d shards no record names", removed)

    summary = FacesSummary(
        detector=fp.detector,
        images=counts["images"],
        processed=processed,
        reused=counts["images"] - processed,
        faces=counts["faces"],
        images_with_faces=counts["images_with_faces"],
        rejects=dict(sorted(rejects.items())),
        quality=_quality(truth, scored, fp),
        output=str(out),
        workers=workers,
    )
    metrics = {k: v for k, v in summary.as_dict().items() if k not in ("output", "workers", "processed", "reused")}
    write_json(out / SUMMARY, metrics)
    _write_sheet(out, [sheet[f] for f in sorted(sheet)], fp)
    return summary
