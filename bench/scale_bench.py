"""Scale benchmark: crawl, faces, dedupe, split and a no-op `dvc repro` at N posts, in a throwaway repo.

    uv run python bench/scale_bench.py --posts 2000 --out /tmp/scale-2000.json       # demo booru
    uv run python bench/scale_bench.py --synthetic 8000 --out /tmp/scale-8000.json   # generated posts

The working tree's files are copied into a temporary git + DVC repo (with this repo's
`.dvc/config`, so the cache links rather than copies). Each stage runs as `dvc repro -s <stage>`
in a fresh measuring process, so its figures include DVC's own hashing and caching:

    wall_s        seconds the stage took
    cpu_s         user + system CPU seconds of the stage and every process it started
    peak_rss_mib  the largest peak resident memory of any one of those processes
                  (getrusage, and every descendant sampled from /proc each 0.1 s: a process
                  that lives under 0.1 s may be missed, its CPU after the last sample too)

then `dvc repro split` with nothing changed (`noop_s` wall, `noop_cpu_s`; measured after one
warm-up run, with Python free to cache bytecode in the temporary folder, as on a user's machine;
`noop_no_bytecode_s` with PYTHONDONTWRITEBYTECODE set and no cached bytecode, where every run
compiles DVC's modules again), the bytes under data/ (`data_bytes`) and
the bytes DVC's cache adds on disk (`cache_bytes`: blocks of cache files not shared by a hard
link with the workspace).

`--grow 0.01` (synthetic only) then adds 1% more pictures to the imported folder, as a second
crawl that finds new posts would, and runs the four stages again: `grow` holds their figures and
the lines in which faces and dedupe say what they did (images processed against unchanged, hashes
reused), to show that the rerun works on the new posts, not on every old image again.

`--synthetic N` writes N small pictures (a demo portrait of its own on a backdrop of its own,
160 px) into a folder and imports them with `crawl.source = folder`: no server, no scene
drawing, so sizes far beyond the demo booru's fit this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STAGES = ("crawl", "faces", "dedupe", "split")

# Runs one command as its child and reports what it and its descendants used. getrusage alone
# misses processes nobody waits for (the faces stage's forkserver and its pool workers), so every
# descendant is also sampled from /proc: its CPU time and its peak RSS (VmHWM) as last seen.
MEASURE = """
import json, os, resource, subprocess, sys, time
TICK = os.sysconf("SC_CLK_TCK")
def tree(root):
    children = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(stat[1]), []).append((int(pid), stat))
    todo, found = [root], {}
    while todo:
        for pid, stat in children.get(todo.pop(), []):
            found[pid] = stat
            todo.append(pid)
    return found
def hwm(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0
start = time.monotonic()
proc = subprocess.Popen(sys.argv[1:])
cpu, peak = {}, {}
while proc.poll() is None:
    for pid, stat in tree(proc.pid).items():
        key = (pid, stat[19])  # pid and start time: a reused pid is another process
        cpu[key] = (int(stat[11]) + int(stat[12])) / TICK
        peak[key] = max(peak.get(key, 0.0), hwm(pid))
    time.sleep(0.1)
wall = time.monotonic() - start
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"code": proc.returncode, "wall_s": round(wall, 3),
    "cpu_s": round(max(r.ru_utime + r.ru_stime, sum(cpu.values())), 3),
    "peak_rss_mib": round(max([r.ru_maxrss / 1024, *peak.values()]), 1)}))
"""


def env(extra: dict[str, str] | None = None) -> dict[str, str]:
    e = dict(os.environ) | (extra or {})
    e = {k: v for k, v in e.items() if v != "" or k not in (extra or {})}
    e["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{e.get('PATH', '')}"
    for k, v in (
        ("GIT_AUTHOR_NAME", "anigan-bench"),
        ("GIT_AUTHOR_EMAIL", "bench@anigan.invalid"),
        ("GIT_COMMITTER_NAME", "anigan-bench"),
        ("GIT_COMMITTER_EMAIL", "bench@anigan.invalid"),
    ):
        e.setdefault(k, v)
    return e


def sh(args: list[str], cwd: Path) -> str:
    proc = subprocess.run(args, check=False, cwd=cwd, env=env(), capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{' '.join(args)} failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-4000:]}")
    return proc.stdout


def measured(args: list[str], cwd: Path, extra: dict[str, str] | None = None, said: tuple[str, ...] = ()) -> dict:
    """The command's figures; with `said`, also its output lines containing any of those words."""
    proc = subprocess.run([sys.executable, "-c", MEASURE, *args], check=False, cwd=cwd, env=env(extra), capture_output=True, text=True)
    lines = proc.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    if result.pop("code"):
        raise SystemExit(f"{' '.join(args)} failed:\n{proc.stderr[-4000:]}")
    if said:
        result["said"] = [line for line in lines[:-1] if any(word in line for word in said)]
    return result


def copy_project(dest: Path) -> None:
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    for rel in filter(None, files.split("\0")):
        src = REPO / rel
        if src.is_file() and not rel.startswith(("data/", "runs/")):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    shutil.copy2(REPO / ".dvc" / "config", dest / ".dvc" / "config")


SYNTHETIC_SIDE = 160  # px of a synthetic post: a 128 px portrait placed at a random offset on a backdrop


def backdrop(rng, side: int):
    """A smooth random colour field: a 4x4 grid of random colours upscaled (cubic), different on every post."""
    import cv2
    import numpy as np

    coarse = rng.uniform(30, 230, (4, 4, 3)).astype(np.float32)
    return np.clip(cv2.resize(coarse, (side, side), interpolation=cv2.INTER_CUBIC), 0, 255).astype(np.uint8)


def synthetic_folder(folder: Path, n: int, start: int = 0) -> None:
    """N distinct small pictures: one drawn face each (animeface finds most), PNG, 160 px.

    Each post draws its own portrait (seed = post number) on a backdrop of its own, at an offset
    of its own. The portraits alone look alike to the perceptual hash (on flat backgrounds dedupe
    kept about a hundred faces at any size); the backdrop and the offset make both the face crops
    and the whole pictures hash apart, so dedupe keeps most faces and split packs thousands.
    """
    import numpy as np
    from PIL import Image

    from crawler.demo.generator import portrait

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(start, n):
        rng = np.random.default_rng(i + 1)
        face = np.asarray(portrait(i + 1, 128))
        pixels = backdrop(rng, SYNTHETIC_SIDE)
        dx, dy = rng.integers(0, SYNTHETIC_SIDE - 128 + 1, 2)
        drawn = ~(face == 235).all(axis=2)  # the portrait's flat background (crawler.demo.generator) lets the backdrop through
        pixels[dy : dy + 128, dx : dx + 128][drawn] = face[drawn]
        # a corner strip spells the post number: every file its own bytes, the face untouched
        pixels[0, :32] = [[(i >> b & 1) * 255] * 3 for b in range(32)]
        Image.fromarray(pixels).save(folder / f"{i:08d}.png", compress_level=1)


def disk_bytes(root: Path) -> int:
    """Bytes of the files under `root`, each inode once (blocks on disk)."""
    seen, total = set(), 0
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            st = path.stat()
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


def cache_bytes(cache: Path, workspace: Path) -> int:
    """Blocks of the cache's files that are not the workspace's own (hard-linked) files."""
    shared = {(p.stat().st_dev, p.stat().st_ino) for p in workspace.rglob("*") if p.is_file() and not p.is_symlink()}
    total = 0
    for path in cache.rglob("*") if cache.is_dir() else ():
        if path.is_file():
            st = path.stat()
            if (st.st_dev, st.st_ino) not in shared:
                total += st.st_blocks * 512
    return total


# Output lines that say how much of the input a rerun worked on.
RERUN_WORDS = ("processed", "hashes reused", "hashed", "new this run")


def run(posts: int | None, synthetic: int | None, keep: bool, grow: float = 0.0) -> dict:
    n = synthetic or posts
    work = Path(tempfile.mkdtemp(prefix="anigan-scale-"))
    repo = work / "repo"
    try:
        repo.mkdir()
        copy_project(repo)
        params = {"demo.posts": n, "crawl.limit": n, "faces.workers": 0, "dedupe.workers": 0}
        if synthetic:
            sys.path.insert(0, str(REPO))
            synthetic_folder(work / "posts", synthetic)
            params |= {"crawl.source": "folder", "crawl.folder": str(work / "posts")}
        set_params(repo / "params.yaml", params)
        sh(["git", "init", "-q"], repo)
        sh(["git", "add", "-A"], repo)
        sh(["git", "commit", "-qm", "scale bench"], repo)
        result: dict = {"posts": n, "source": "synthetic" if synthetic else "demo", "cpus": os.cpu_count(), "stages": {}}
        for stage in STAGES:
            result["stages"][stage] = measured(["dvc", "repro", "-s", stage], repo)
            print(stage, result["stages"][stage], flush=True)
        result |= noop(repo, work / "pycache")
        result["data_bytes"] = disk_bytes(repo / "data")
        result["cache_bytes"] = cache_bytes(repo / ".dvc" / "cache", repo / "data")
        result["load_avg_1min"] = round(os.getloadavg()[0], 2)  # other work on the machine: wall times are noisy
        result["cache_type"] = sh(["dvc", "config", "cache.type"], repo).strip()
        result["files_tracked"] = sum(1 for p in (repo / "data").rglob("*") if p.is_file())
        counts = {}
        for name, path in (("images", "data/raw/crawl.json"), ("faces", "data/faces/faces.json"), ("kept", "data/dedup/dedupe.json")):
            counts[name] = json.loads((repo / path).read_text()).get({"images": "kept", "faces": "faces", "kept": "kept"}[name])
        result["counts"] = counts
        if grow:
            result["grow"] = grown(repo, work / "posts", n, max(1, round(n * grow)))
        return result
    finally:
        if keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def grown(repo: Path, posts: Path, n: int, added: int) -> dict:
    """Add `added` new pictures to the imported folder (a second crawl's new posts) and rerun every stage."""
    synthetic_folder(posts, n + added, start=n)
    set_params(repo / "params.yaml", {"demo.posts": n + added, "crawl.limit": n + added})
    figures: dict = {"added_posts": added, "stages": {}}
    for stage in STAGES:
        figures["stages"][stage] = measured(["dvc", "repro", "-s", stage], repo, said=RERUN_WORDS)
        print("grow", stage, figures["stages"][stage], flush=True)
    return figures


def noop(repo: Path, pycache: Path) -> dict:
    """`dvc repro split` with nothing to do: with bytecode cached (after a warm-up), then without."""
    cached = {"PYTHONPYCACHEPREFIX": str(pycache), "PYTHONDONTWRITEBYTECODE": ""}
    figures = {}
    for name, extra, runs in (("noop", cached, 2), ("noop_no_bytecode", {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": str(pycache / "none")}, 1)):
        for _ in range(runs):  # the first of two only fills the bytecode cache
            m = measured(["dvc", "repro", "split"], repo, extra)
        figures[f"{name}_s"], figures[f"{name}_cpu_s"] = m["wall_s"], m["cpu_s"]
    status = sh(["dvc", "status", "split"], repo)
    assert "up to date" in status, status  # a no-op indeed: nothing was changed or rerun
    return figures


def set_params(path: Path, values: dict) -> None:
    import yaml

    params = yaml.safe_load(path.read_text())
    for dotted, value in values.items():
        section, _, key = dotted.rpartition(".")
        (params.setdefault(section, {}) if section else params)[key] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group(required=True)
    size.add_argument("--posts", type=int, help="demo booru posts")
    size.add_argument("--synthetic", type=int, help="generated posts imported from a folder")
    parser.add_argument("--out", required=True, help="JSON file for the figures")
    parser.add_argument("--keep", action="store_true", help="keep the temporary repo")
    parser.add_argument("--grow", type=float, default=0.0, help="then add this share of new posts and rerun (synthetic only): 0.01 for 1%%")
    args = parser.parse_args()
    if args.grow and not args.synthetic:
        parser.error("--grow needs --synthetic (a bigger demo booru is another site, crawled afresh)")
    result = run(args.posts, args.synthetic, args.keep, args.grow)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
