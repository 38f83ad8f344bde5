"""Crawl throughput: images per second from the demo booru, the crawler against a plain loop.

    uv run python bench/crawl_bench.py [--posts 200] [--seed 0] [--latency 0 0.05] [--repeat 2]

For each simulated server latency (the demo booru's `delay` fault: every response waits that
long, like a real site's round trip), the crawler (`CrawlRun`, default concurrency, validation
and content-addressed writes included) fetches every post of the demo booru into a fresh folder;
then a plain sequential loop written for this bench (urllib, one request after another, each file
written to disk) downloads the same listing pages and the same file URLs the crawler fetched.
The ratio is the crawler's images per second over the loop's, same posts, same run, best of
`--repeat` runs each, the two interleaved so that both see the same background load.

The crawler's end-to-end time includes starting its worker process (importing Scrapy);
"steady" is its rate from the first kept image to the last, without that start-up.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from anigan.params import load_params  # noqa: E402
from crawler.adapters import DIALECTS  # noqa: E402
from crawler.crawl import CrawlRun  # noqa: E402
from crawler.demo.generator import generate_site  # noqa: E402
from crawler.demo.server import DemoBooru, Faults  # noqa: E402

ALL_RATINGS = ["general", "sensitive", "questionable", "explicit"]


def crawler_run(url: str, out: Path, posts: int) -> dict:
    """One crawl of every post into `out`: files fetched, end-to-end and steady images/s."""
    params = load_params(None, {"paths.raw": str(out), "crawl.base_url": url, "crawl.ratings": ALL_RATINGS,
                                "crawl.limit": posts * 2, "demo.posts": posts})
    start = time.perf_counter()
    stamps = []
    with CrawlRun(params) as run:
        for progress in run.events():
            stamps.append((time.perf_counter(), progress.new))
        summary = run.finish()
    elapsed = time.perf_counter() - start
    files = [json.loads(line)["file_url"] for line in (out / "manifest.jsonl").read_text().splitlines()]
    (t0, n0), (t1, n1) = stamps[0], stamps[-1]
    return {
        "images": summary.kept,
        "file_urls": files,
        "end_to_end": summary.kept / elapsed,
        "steady": (n1 - n0) / (t1 - t0) if t1 > t0 else float("nan"),
        "startup": stamps[0][0] - start,
    }


def sequential_run(url: str, file_urls: list[str], out: Path, page_size: int = 100) -> float:
    """The baseline: list every page, then download each file one after another; images per second."""
    dialect = DIALECTS["danbooru"]
    out.mkdir(parents=True)
    start = time.perf_counter()
    cursor = dialect.first_cursor()
    while cursor is not None:
        with urllib.request.urlopen(dialect.page_url(url, "", cursor, page_size, {})) as response:
            page = dialect.parse_page(url, "demo", json.load(response))
        cursor = dialect.next_cursor(cursor, page)
    for file_url in file_urls:
        with urllib.request.urlopen(file_url) as response:
            data = response.read()
        (out / hashlib.sha256(data).hexdigest()).write_bytes(data)
    return len(file_urls) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--latency", type=float, nargs="+", default=[0.0, 0.05])
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    site = generate_site(args.seed, args.posts)
    concurrency = load_params(None).crawl.concurrency
    print(f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
          f"{args.posts} demo posts (seed {args.seed}), crawler concurrency {concurrency}, best of {args.repeat}")
    print("| latency per response | images | crawler img/s (end-to-end) | crawler img/s (steady) | worker start-up s | sequential loop img/s | ratio end-to-end | ratio steady |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        for latency in args.latency:
            with DemoBooru(site, faults=Faults(delay=latency)) as booru:
                best_crawl, best_loop = None, 0.0
                for i in range(args.repeat):
                    run = crawler_run(booru.url, Path(tmp) / f"crawl{latency}-{i}", args.posts)
                    if best_crawl is None or run["end_to_end"] > best_crawl["end_to_end"]:
                        best_crawl = run
                    best_loop = max(best_loop, sequential_run(booru.url, run["file_urls"], Path(tmp) / f"loop{latency}-{i}"))
                    shutil.rmtree(Path(tmp) / f"crawl{latency}-{i}")
            c = best_crawl
            print(f"| {latency * 1000:.0f} ms | {c['images']} | {c['end_to_end']:.1f} | {c['steady']:.1f} | {c['startup']:.1f} | "
                  f"{best_loop:.1f} | {c['end_to_end'] / best_loop:.2f}x | {c['steady'] / best_loop:.2f}x |")


if __name__ == "__main__":
    main()
