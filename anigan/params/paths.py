"""Where each stage reads and writes, relative to the repo root (docs/architecture.md, data contracts)."""

from dataclasses import dataclass

from anigan.params.schema import param


@dataclass(frozen=True)
class PathsParams:
    raw: str = param("data/raw", help="crawl output: shards/*.tar, manifest.jsonl, rejects.jsonl, crawl.json")
    faces: str = param("data/faces", help="faces output: shards/*.tar, manifest.jsonl, faces.json")
    dedup: str = param("data/dedup", help="dedupe output: manifest.jsonl, dedupe.json")
    dataset: str = param("data/dataset", help="split output: {train,test}.npy and .jsonl, card.json")
    train_run: str = param("runs/train", help="train output: checkpoints/, samples/, progress.gif, dvclive/")
    evaluate_run: str = param("runs/evaluate", help="evaluate output: metrics.json, report.html")
