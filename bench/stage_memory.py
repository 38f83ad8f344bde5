"""Stage memory: peak RSS of crawl, faces, dedupe or split on generated inputs of N records, for the flat-in-N goal.

    uv run python bench/stage_memory.py --stage dedupe --records 100000 --json /tmp/dedupe-100k.json
    uv run python bench/stage_memory.py --stage split --records 400000 [--workdir DIR] [--repo DIR] --json FILE
    uv run python bench/stage_memory.py --stage crawl --records 400000 [--workdir DIR] [--repo DIR] --json FILE
    uv run python bench/stage_memory.py --stage faces --records 400000 [--workdir DIR] [--repo DIR] --json FILE

Inputs are generated, as cheaply as the stage allows, into `--workdir` (kept there and reused
by a later run with the same stage and N; a temporary folder by default, removed at the end):

    dedupe  a faces manifest of N faces (about 1.4 a source image), the raw manifest of their
            images, empty raw shard files (dedupe only checks they exist) and a hash cache that
            already holds every face's and image's hashes, so no image is decoded: what is
            measured is the stage's own bookkeeping. A tenth of the faces are near copies of
            another face's pHash, 3% exact pixel copies, 5% of the images reposts of another.
    split   a faces manifest and a dedup manifest of N faces (a tenth of them duplicates, not
            kept), every crop one of a few 32 px PNGs in one shard, packed at split.image_size 32.
    crawl   a raw folder of N posts filled by the folder source (the cheapest real crawl: no site,
            no Scrapy worker, one process): manifest lines (5% reposts of an earlier image), a
            tenth as many rejects lines (a third of them transient, dropped on resume), tar shards
            of tiny real members, crawl_state.json of the query the run makes; and the folder
            imported, `gallery/`: a few posts the manifest holds already, a few new images, one
            with the bytes of an image stored earlier and one twice. The run resumes on a copy
            (shards hard-linked, so they count as shared and are never changed): prepare, counts,
            the Ledger and Places all work at full size, and the new images go through them.
    faces   a raw folder of N posts (manifest lines, 5% reposts of an earlier image; tar shards of
            a few bytes a member) and the faces folder a finished earlier run left: `state.jsonl`
            with one line per image under the current detection key (computed here with the
            checkout's params.yaml and preprocess.faces.stage.detection_key), about 1.4 faces an
            image, a tenth of the images with none and a no_face reject, a face reject every
            fourth image, and crop shards whose every member is a real 8 px PNG. A few lines of an
            older key come first, naming crops in the first shard that no current line names, so
            the run compacts that shard. The last posts are NEW_FACES_IMAGES new images, real PNGs
            (the self-check face and noise), which the run detects. The run resumes on a copy of
            the faces folder (crop shards hard-linked: shared, so new crops start a shard of their
            own): the state read, the list of images to do, the new images and the assembly
            (compaction, manifest, rejects, state, contact sheet) all work at full size.

The stage then runs as `anigan dedupe`, `anigan split`, `anigan crawl` or `anigan faces` in a child
process with paths pointing at the generated folders (dedupe.workers 1 and faces.workers 1, so one
process does the work). The figures are the
child's peak resident set (`os.wait4`'s ru_maxrss), its wall time and its CPU seconds; they go to
`--json` and to bench/RESULTS.md by hand. `--repo` runs another checkout's code on the same
inputs (the child's working folder, so `-m anigan` imports it): with `--workdir` and the outputs
left in `<workdir>/out-<stage>`, two checkouts' outputs can be compared byte for byte.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import platform
import shutil
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

import cv2
import numpy as np
from child import measure_child  # bench/child.py: run as a script, this folder is on the path

REPO = Path(__file__).resolve().parents[1]
IMAGES_PER_SHARD = 2000
CROPS = 8  # distinct crop files every face points at


def hexdigest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def phash_hex(value: int) -> str:
    return f"{value:016x}"


def write_lines(path: Path, records) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(record, separators=(",", ":")) + "\n" for record in records)


def image_of(i: int) -> int:
    """Face i's source image: about 1.4 faces an image."""
    return i * 5 // 7


def face_ids(n: int) -> list[tuple[str, str]]:
    """(face_id, image_id) of each face, the face ID shaped as the faces stage makes it."""
    return [(f"{(image := hexdigest(f'image {image_of(i)}'))[:8]}-{hexdigest(f'face {i}')[:12]}", image) for i in range(n)]


def face_record(face_id: str, image_id: str, i: int, member: tuple[str, int, int], rng: np.random.Generator) -> dict:
    x, y, side = (int(v) for v in rng.integers(0, 400, 3))
    return {
        "face_id": face_id, "image_id": image_id, "box": [x, y, side + 48, side + 48], "crop": [x - 12, y - 12, side + 72, side + 72],
        "score": round(float(rng.random()), 4), "detector": "animeface", "hair_color": ("blue", "red", None)[i % 3], "eye_color": ("green", None)[i % 2],
        "colors_from": "tags", "transform": [[1.0, 0.0, -x], [0.0, 1.0, -y]], "aligned_by": "none",
        "measures": {"upscale": 1.0, "cut_off": 0.0, "chroma": 0.5, "sharpness": 0.9},
        "shard": member[0], "offset": member[1], "bytes": member[2], "file_sha256": hexdigest(f"crop {i}"),
    }  # fmt: skip


def dedupe_inputs(work: Path, n: int) -> None:
    """faces/, raw/ and the pristine hash cache `hashes.jsonl` for N faces."""
    rng = np.random.default_rng(0)
    faces, raw = work / "faces", work / "raw"
    (raw / "shards").mkdir(parents=True, exist_ok=True)
    faces.mkdir(exist_ok=True)
    ids = face_ids(n)
    images = image_of(n - 1) + 1
    face_hash = rng.integers(0, 2**63, n, dtype=np.int64).astype(np.uint64) * np.uint64(2) + rng.integers(0, 2, n).astype(np.uint64)
    near = np.nonzero(rng.random(n) < 0.1)[0]
    near = near[near >= 3]
    flips = np.uint64(1) << rng.integers(0, 64, len(near)).astype(np.uint64)
    face_hash[near] = face_hash[near - 3] ^ flips
    pixels = [hexdigest(f"pixels {i}") for i in range(n)]
    for i in np.nonzero(rng.random(n) < 0.03)[0].tolist():
        pixels[i] = pixels[max(i - 5, 0)]
    image_hash = rng.integers(0, 2**63, images, dtype=np.int64).astype(np.uint64)
    repost = np.nonzero(rng.random(images) < 0.05)[0]
    repost = repost[repost >= 1]
    image_hash[repost] = image_hash[repost - 1]
    image_ids = [hexdigest(f"image {k}") for k in range(images)]

    write_lines(faces / "manifest.jsonl", (face_record(fid, image, i, (f"faces-{i // 5000:06d}.tar", 512, 2000), rng) for i, (fid, image) in enumerate(ids)))
    raw_record = {"source": "demo", "width": 640, "height": 480, "tags": ["1girl", "solo", "blue_hair", "green_eyes"], "rating": "general"}
    write_lines(
        raw / "manifest.jsonl",
        (
            {"image_id": image, **raw_record, "post_id": k, "post_url": f"http://booru.invalid/posts/{k}", "md5": image[:32],
             "shard": f"raw-{k // IMAGES_PER_SHARD:06d}.tar", "offset": 512 + (k % IMAGES_PER_SHARD) * 1024, "bytes": 1000}
            for k, image in enumerate(image_ids)
        ),
    )  # fmt: skip
    for s in range(-(-images // IMAGES_PER_SHARD)):
        (raw / "shards" / f"raw-{s:06d}.tar").touch()
    version = {"hash": "phash-dct32-8x8-v1"}
    write_lines(
        work / "hashes.jsonl",
        [
            *({"face_id": fid, **version, "file_sha256": hexdigest(f"crop {i}"), "phash": phash_hex(int(face_hash[i])), "pixel_sha256": pixels[i], "size": [128, 128]}
              for i, (fid, _) in enumerate(ids)),
            *({"image_id": image, **version, "file_sha256": image, "phash": phash_hex(int(image_hash[k])), "pixel_sha256": hexdigest(f"image pixels {k}"),
               "size": [640, 480]} for k, image in enumerate(image_ids)),
        ],
    )  # fmt: skip


def crop_shard(path: Path) -> list[tuple[int, int]]:
    """A shard of CROPS distinct 32 px PNG crops; (offset, bytes) of each."""
    rng = np.random.default_rng(1)
    places = []
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for k in range(CROPS):
            _, png = cv2.imencode(".png", rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
            data = png.tobytes()
            info = tarfile.TarInfo(f"crop-{k}.png")
            info.size = len(data)
            places.append((tar.offset + 512, len(data)))  # the data follows its 512-byte header
            tar.addfile(info, BytesIO(data))
    return places


def split_inputs(work: Path, n: int) -> None:
    """faces/ (manifest and one crop shard) and dedup/manifest.jsonl for N faces."""
    rng = np.random.default_rng(0)
    faces, dedup = work / "faces", work / "dedup"
    (faces / "shards").mkdir(parents=True, exist_ok=True)
    dedup.mkdir(exist_ok=True)
    places = crop_shard(faces / "shards" / "faces-000000.tar")
    ids = face_ids(n)
    write_lines(faces / "manifest.jsonl", (face_record(fid, image, i, ("faces-000000.tar", *places[i % CROPS]), rng) for i, (fid, image) in enumerate(ids)))
    order = sorted(range(n), key=lambda i: ids[i][0])

    def dedup_record(rank: int) -> dict:
        i = order[rank]
        copy = rank % 10 == 9  # a duplicate of the face before it in face-ID order
        group = ids[order[rank - 1]][0] if copy else ids[i][0]
        return {"face_id": ids[i][0], "image_id": ids[i][1], "phash": phash_hex(i), "group_id": group, "kept": not copy, "dup_kind": "near" if copy else None,
                "distance": 3 if copy else 0}  # fmt: skip

    write_lines(dedup / "manifest.jsonl", (dedup_record(rank) for rank in range(n)))


def png(rng: np.random.Generator, side: int = 64) -> bytes:
    return cv2.imencode(".png", rng.integers(0, 256, (side, side, 3), dtype=np.uint8))[1].tobytes()


def tar_member(name: str, data: bytes) -> bytes:
    """One member as the crawl writes it (anigan.shards): a ustar header, the data, padding to a block."""
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    return info.tobuf(format=tarfile.USTAR_FORMAT) + data + b"\0" * (-len(data) % 512)


CRAWL_REAL = 10  # the first images are real PNGs (one of them is imported again); the rest a few bytes
CRAWL_KNOWN = (1, 2, 3)  # posts the gallery holds that the manifest has already
CRAWL_NEW = 8


def crawl_post(k: int) -> int:
    """Post k's image: one post in 20 is a repost of an image seven posts before."""
    return k - 7 if k % 20 == 19 else k


def crawl_inputs(work: Path, n: int) -> None:
    """raw/ (manifest, rejects, shards, state) of N posts imported from `gallery/`, and the gallery."""
    rng = np.random.default_rng(0)
    raw, gallery = work / "raw", work / "gallery"
    (raw / "shards").mkdir(parents=True)
    gallery.mkdir()
    at = "2026-01-01T00:00:00+00:00"
    members: dict[int, tuple[str, str, int, int]] = {}  # image -> (image_id, shard, offset, bytes)
    shard, count, offset = None, 0, 0
    with open(raw / "manifest.jsonl", "w", encoding="utf-8") as manifest:
        for k in range(n):
            image = crawl_post(k)
            if image not in members:
                data = png(rng) if image < CRAWL_REAL else f"image {image}".encode()
                image_id = hashlib.sha256(data).hexdigest()
                if shard is None or count == IMAGES_PER_SHARD:
                    if shard is not None:
                        shard.write(b"\0" * 1024)  # tar's end marker, as a finished shard has
                        shard.close()
                    name = f"raw-{len(members) // IMAGES_PER_SHARD:06d}.tar"
                    shard, count, offset = open(raw / "shards" / name, "wb"), 0, 0  # noqa: SIM115 (closed when full)
                shard.write(tar_member(f"{image_id}.png", data))
                members[image] = (image_id, name, offset + 512, len(data))
                offset += 512 + len(data) + (-len(data) % 512)
                count += 1
                if image == 3:
                    (gallery / "repost.png").write_bytes(data)  # an image stored earlier, imported again
            image_id, in_shard, at_offset, size = members[image]
            post = f"{k:07d}.png"
            record = {"image_id": image_id, "source": "folder", "post_id": post, "post_url": post, "file_url": post, "md5": None, "width": 640,
                      "height": 480, "tags": [], "rating": None, "fetched_at": at, "shard": in_shard, "offset": at_offset, "bytes": size}  # fmt: skip
            manifest.write(json.dumps(record, separators=(",", ":")) + "\n")
    shard.write(b"\0" * 1024)
    shard.close()
    reasons = (("too_small", "32x32, smaller than 64x64"), ("corrupt", "cannot decode"), ("server_error", "HTTP 503 after 3 retries"))
    write_lines(
        raw / "rejects.jsonl",
        ({"source": "folder", "post_id": f"r{k:07d}.png", "post_url": f"r{k:07d}.png", "file_url": f"r{k:07d}.png", "reason": reasons[k % 3][0],
          "detail": reasons[k % 3][1], "rejected_at": at} for k in range(n // 10)),
    )  # fmt: skip
    filters = {"ratings": ["general", "sensitive"], "min_width": 64, "min_height": 64, "max_pixels": 40000000, "max_bytes": 30000000, "keep_unrated": True}
    query = {"source": "folder", "site": str(gallery.resolve()), "tags": ""}
    (raw / "crawl_state.json").write_text(json.dumps({"query": query, "filters": filters}, indent=2, sort_keys=True) + "\n")
    for k in CRAWL_KNOWN:
        (gallery / f"{k:07d}.png").write_bytes(png(rng))
    for j in range(CRAWL_NEW):
        (gallery / f"new-{j}.png").write_bytes(data := png(rng))
        if j == 0:
            (gallery / "twice.png").write_bytes(data)


NEW_FACES_IMAGES = 6


def faces_inputs(work: Path, n: int) -> None:
    """raw/ (manifest and shards) of N posts and faces/ (state and crop shards) as a finished run left it, all but the last few new images done."""
    sys.path.insert(0, str(REPO))
    from anigan.params import load_params
    from preprocess.faces.stage import detection_key

    params = load_params(REPO / "params.yaml")
    key, shard_size = detection_key(params.faces), params.faces.shard_size
    rng = np.random.default_rng(0)
    raw, faces = work / "raw", work / "faces"
    (raw / "shards").mkdir(parents=True)
    (faces / "shards").mkdir(parents=True)
    crops = [cv2.imencode(".png", rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))[1].tobytes() for _ in range(CROPS)]
    new = [(REPO / "preprocess" / "faces" / "selfcheck_face.png").read_bytes(), *(png(rng, 96) for _ in range(NEW_FACES_IMAGES - 1))]
    at = "2026-01-01T00:00:00+00:00"

    class Shards:
        """Tar shards of one prefix written member by member, `size` members a shard."""

        def __init__(self, folder: Path, prefix: str, size: int) -> None:
            self.folder, self.prefix, self.size = folder, prefix, size
            self.file, self.count, self.number, self.offset = None, size, -1, 0

        def add(self, name: str, data: bytes) -> tuple[str, int, int]:
            if self.count == self.size:
                self.close()
                self.number += 1
                self.file, self.count, self.offset = open(self.folder / f"{self.prefix}-{self.number:06d}.tar", "wb"), 0, 0  # noqa: SIM115
            self.file.write(tar_member(name, data))
            place = (f"{self.prefix}-{self.number:06d}.tar", self.offset + 512, len(data))
            self.offset += 512 + len(data) + (-len(data) % 512)
            self.count += 1
            return place

        def close(self) -> None:
            if self.file is not None:
                self.file.write(b"\0" * 1024)
                self.file.close()

    raw_shards, crop_shards = Shards(raw / "shards", "raw", IMAGES_PER_SHARD), Shards(faces / "shards", "faces", shard_size)
    stale = []  # lines of an older key, their crops in the first shard
    for k in range(20):
        image_id = hexdigest(f"gone {k}")
        face = face_record(f"{image_id[:8]}-{hexdigest(f'gone face {k}')[:12]}", image_id, k, crop_shards.add(f"gone-{k}.png", crops[k % CROPS]), rng)
        stale.append({"image_id": image_id, "faces": [face], "rejects": [], "key": "0" * 16})
    images: dict[int, dict] = {}
    face_number = 0
    with open(raw / "manifest.jsonl", "w", encoding="utf-8") as manifest, open(faces / "state.jsonl", "w", encoding="utf-8") as state:
        state.writelines(json.dumps(line, separators=(",", ":")) + "\n" for line in stale)
        for k in range(n):
            image = crawl_post(k) if k < n - NEW_FACES_IMAGES else k
            if image not in images:
                data = new[k - (n - NEW_FACES_IMAGES)] if k >= n - NEW_FACES_IMAGES else f"image {image}".encode()
                image_id = hashlib.sha256(data).hexdigest()
                shard, offset, size = raw_shards.add(f"{image_id}.png", data)
                images[image] = {"image_id": image_id, "shard": shard, "offset": offset, "bytes": size}
                if k < n - NEW_FACES_IMAGES:
                    count = (0, 1, 2, 1, 2, 1, 2, 1, 2, 2)[image % 10]
                    line: dict = {"image_id": image_id, "faces": [], "rejects": []}
                    for _ in range(count):
                        face_id = f"{image_id[:8]}-{hexdigest(f'face {face_number}')[:12]}"
                        place = crop_shards.add(f"{face_id}.png", crops[face_number % CROPS])
                        line["faces"].append(face_record(face_id, image_id, face_number, place, rng))
                        face_number += 1
                    if count == 0:
                        line["rejects"].append({"image_id": image_id, "reason": "no_face", "detail": "animeface found no face"})
                    elif image % 4 == 0:
                        line["rejects"].append(
                            {"image_id": image_id, "reason": "too_small", "detail": "40 px, under faces.min_face_size 48", "box": [5, 5, 40, 40], "detector": "animeface"}
                        )
                    line["key"] = key
                    state.write(json.dumps(line, separators=(",", ":")) + "\n")
            place = images[image]
            post = f"{k:07d}"
            record = {"image_id": place["image_id"], "source": "demo", "post_id": post, "post_url": f"http://booru.invalid/posts/{post}",
                      "file_url": f"http://booru.invalid/{post}.png", "md5": place["image_id"][:32], "width": 640, "height": 480,
                      "tags": ["1girl", "solo", "blue_hair", "green_eyes"], "rating": "general", "fetched_at": at,
                      "shard": place["shard"], "offset": place["offset"], "bytes": place["bytes"]}  # fmt: skip
            manifest.write(json.dumps(record, separators=(",", ":")) + "\n")
    raw_shards.close()
    crop_shards.close()


GENERATORS = {"crawl": crawl_inputs, "dedupe": dedupe_inputs, "faces": faces_inputs, "split": split_inputs}


def generate(stage: str, inputs: Path, records: int) -> None:
    shutil.rmtree(inputs, ignore_errors=True)
    inputs.mkdir(parents=True)
    GENERATORS[stage](inputs, records)
    (inputs / "done").touch()


def overrides(paths: dict[str, Path]) -> list[str]:
    return [arg for key, path in paths.items() for arg in ("-S", f"paths.{key}={path}")]


def stage_args(stage: str, work: Path, out: Path) -> list[str]:
    if stage == "crawl":
        (out / "shards").mkdir(parents=True)
        for name in ("manifest.jsonl", "rejects.jsonl", "crawl_state.json"):
            shutil.copyfile(work / "raw" / name, out / name)
        for shard in (work / "raw" / "shards").iterdir():
            os.link(shard, out / "shards" / shard.name)  # shared: the crawl starts a shard of its own
        return [*overrides({"raw": out}), "crawl", "--source", "folder", "--folder", str(work / "gallery"), "--limit", "100000000"]
    if stage == "faces":
        (out / "shards").mkdir(parents=True)
        shutil.copyfile(work / "faces" / "state.jsonl", out / "state.jsonl")
        for shard in (work / "faces" / "shards").iterdir():
            os.link(shard, out / "shards" / shard.name)  # shared: never changed, new crops start a shard of their own
        return [*overrides({"raw": work / "raw", "faces": out}), "-S", "faces.workers=1", "faces"]
    if stage == "dedupe":
        out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(work / "hashes.jsonl", out / "hashes.jsonl")  # the stage rewrites its cache
        paths = {"faces": work / "faces", "raw": work / "raw", "dedup": out}
        return [*overrides(paths), "-S", "dedupe.workers=1", "dedupe"]
    paths = {"faces": work / "faces", "dedup": work / "dedup", "dataset": out}
    return [*overrides(paths), "-S", "split.image_size=32", "split"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", choices=sorted(GENERATORS), required=True)
    parser.add_argument("--records", type=int, required=True, help="faces (posts for crawl and faces) in the generated manifests")
    parser.add_argument("--workdir", type=Path, default=None, help="where inputs and outputs go, kept (default: a temporary folder, removed)")
    parser.add_argument("--repo", type=Path, default=REPO, help="the checkout whose code runs (default: this one)")
    parser.add_argument("--json", type=Path, required=True, help="where the figures go")
    args = parser.parse_args()
    if args.records < 10:
        parser.error("--records: at least 10")

    work = args.workdir or Path(tempfile.mkdtemp(prefix=f"anigan-{args.stage}-memory-"))
    inputs = work / f"in-{args.stage}-{args.records}"
    try:
        started = time.perf_counter()
        if not (inputs / "done").is_file():
            # In a process of its own: a child's ru_maxrss counts the memory of the process it was
            # started from, so the generator's arrays must never have been this one's.
            generator = multiprocessing.get_context("spawn").Process(target=generate, args=(args.stage, inputs, args.records))
            generator.start()
            generator.join()
            if generator.exitcode:
                sys.exit(f"generating the {args.stage} inputs failed with {generator.exitcode}")
        generated = time.perf_counter() - started
        out = work / f"out-{args.stage}"
        shutil.rmtree(out, ignore_errors=True)
        result = {
            "stage": args.stage,
            "records": args.records,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
            "generate_s": round(generated, 1),
            **measure_child([sys.executable, "-m", "anigan", *stage_args(args.stage, inputs, out)], args.repo.resolve(), quiet=True),
        }
        args.json.write_text(json.dumps(result, indent=1) + "\n")
        print(json.dumps(result))
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
