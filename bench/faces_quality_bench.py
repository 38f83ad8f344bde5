"""Faces quality: each filter's precision and recall on demo faces planted with its defect, over a
range of thresholds, and the three detector modes compared on the same images.

    uv run python bench/faces_quality_bench.py --posts 300 --defects 0.3 --cascade models/lbpcascade_animeface.xml

Faces are detected, kept as the stage keeps them (faces.min_face_size, score), matched to the
truth at IoU 0.5 in animeface's framing as faces.json does (preprocess/faces/quality.py, scored_box), framed and measured as the stage does (preprocess/faces/framing.py). A filter's
precision is the share of the faces it drops that carry its defect; its recall the share of the
faces with that defect it drops. Prints markdown tables for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import io
import json
from collections import Counter, defaultdict

from PIL import Image

from anigan.params.faces import FacesParams
from crawler.demo.generator import generate_site
from preprocess.boxes import face_side, match_boxes
from preprocess.faces.crop import square_crop
from preprocess.faces.detect import make_detector, select_faces
from preprocess.faces.filters import monochrome_tags
from preprocess.faces.framing import frame_face, measure_face
from preprocess.faces.quality import scored_box

GRIDS = {
    "upscale": ("tiny", [1.25, 1.5, 1.75, 2.0, 2.5], "above"),
    "cut_off": ("cut_off", [0.05, 0.1, 0.15, 0.2, 0.25, 0.3], "above"),
    "chroma": ("monochrome", [0.02, 0.05, 0.08, 0.12, 0.16], "below"),
    "sharpness": ("blurred", [0.2, 0.3, 0.4, 0.5, 0.6, 0.8], "below"),
}


def _images(site):
    for post in site.posts:
        if post.kind in ("bomb", "html", "truncated", "zero_byte", "too_small"):
            continue
        try:
            image = Image.open(io.BytesIO(post.data))
            image.load()
        except OSError:
            continue
        yield post, image.convert("RGB")


def run(posts: int, seed: int, defects: float, cascade: str | None) -> dict:
    site = generate_site(seed, posts, defects)
    modes = ["animeface"] + (["cascade", "both"] if cascade else [])
    out: dict = {"posts": posts, "seed": seed, "defects": defects, "detectors": {}, "faces": []}
    for mode in modes:
        params = FacesParams(detector=mode, cascade_path=cascade)
        detector = make_detector(params)
        tp = fp = truth_n = 0
        found_by_defect: Counter = Counter()
        truth_by_defect: Counter = Counter()
        for post, image in _images(site):
            kept, _ = select_faces(detector.detect(image), params)
            truth = [f for f in post.faces]
            pairs = match_boxes([scored_box({"box": d.box, "detector": d.found_by}) for d in kept], [f.box for f in truth], 0.5)
            matched = dict(pairs)
            for f in truth:
                if face_side(f.box) >= params.min_face_size:
                    truth_by_defect[f.defect or "none"] += 1
                    truth_n += 1
            for i, d in enumerate(kept):
                if i not in matched:
                    fp += 1
                    continue
                f = truth[matched[i]]
                if face_side(f.box) < params.min_face_size:
                    continue
                tp += 1
                found_by_defect[f.defect or "none"] += 1
                if mode != modes[-1]:  # faces are measured once, on the widest mode's detections
                    continue
                crop = square_crop(d.box, params.margin, image.size, params.border)
                row = {"found_by": d.found_by, "post_id": post.post_id, "defect": f.defect or "none", "tagged_monochrome": bool(monochrome_tags(post.tags))}
                for aligned in (False, True):
                    framing = frame_face(d.box, crop, d.eyes if aligned else None, "eyes", params.margin, params.size)
                    row["aligned" if aligned else "plain"] = measure_face(image, d.box, framing, params.margin, params.size).as_dict()
                out["faces"].append(row)
        out["detectors"][mode] = {
            "true_positives": tp,
            "false_positives": fp,
            "precision": round(tp / (tp + fp), 3) if tp + fp else None,
            "recall": round(tp / truth_n, 3) if truth_n else None,
            "recall_by_defect": {k: f"{found_by_defect[k]}/{truth_by_defect[k]}" for k in sorted(truth_by_defect)},
        }
    out["filters"] = filter_table(out["faces"])
    return out


def filter_table(faces: list[dict]) -> dict:
    table: dict = defaultdict(dict)
    for framing in ("plain", "aligned"):
        for measure, (defect, grid, side) in GRIDS.items():
            for t in grid:
                flagged = [f for f in faces if (f[framing][measure] > t if side == "above" else f[framing][measure] < t)]
                if measure == "chroma":  # the pixel test only judges faces the tags did not already drop
                    flagged = [f for f in flagged if not f["tagged_monochrome"]]
                hits = sum(f["defect"] == defect for f in flagged)
                target = sum(f["defect"] == defect and not (measure == "chroma" and f["tagged_monochrome"]) for f in faces)
                clean = [f for f in faces if f["defect"] == "none"]
                table[f"{framing}:{measure}"][str(t)] = {
                    "dropped": len(flagged),
                    "precision": round(hits / len(flagged), 3) if flagged else None,
                    "recall": round(hits / target, 3) if target else None,
                    "clean_dropped": round(sum(f in flagged for f in clean) / len(clean), 3) if clean else None,
                    "by_defect": dict(Counter(f["defect"] for f in flagged)),
                }
    return table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--posts", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--defects", type=float, default=0.3)
    ap.add_argument("--cascade", default=None, help="cascade XML; with it, all three detector modes are compared")
    ap.add_argument("--json", default=None, help="write the full result here")
    args = ap.parse_args()
    result = run(args.posts, args.seed, args.defects, args.cascade)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    print("| detector | precision | recall (>= 48 px) | found / true by defect |\n| --- | --- | --- | --- |")
    for mode, r in result["detectors"].items():
        by = ", ".join(f"{k} {v}" for k, v in r["recall_by_defect"].items())
        print(f"| {mode} | {r['precision']} | {r['recall']} | {by} |")
    print(
        "\n| framing:measure | threshold | dropped | precision | recall | clean faces dropped | dropped by defect |\n| --- | --- | --- | --- | --- | --- | --- |"
    )
    for name, rows in result["filters"].items():
        for t, r in rows.items():
            print(f"| {name} | {t} | {r['dropped']} | {r['precision']} | {r['recall']} | {r['clean_dropped']} | {r['by_defect']} |")


if __name__ == "__main__":
    main()
