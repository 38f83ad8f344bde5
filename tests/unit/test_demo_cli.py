"""`anigan demo-site generate` writes the posts to a folder; `anigan demo-site serve` serves them on loopback."""

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner

from anigan.cli import cli
from crawler.demo.generator import generate_site

REPO = Path(__file__).resolve().parents[2]


def test_generate_writes_files_posts_and_ground_truth(tmp_path):
    result = CliRunner().invoke(cli, ["demo-site", "generate", str(tmp_path / "out"), "--posts", "45"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    site = generate_site(seed=0, posts=45)

    files = sorted((out / "files").iterdir())
    assert len(files) == 45
    for path, post in zip(files, site.posts):
        assert path.name == f"{post.post_id:05d}-{post.kind}.{post.ext}"
        assert path.read_bytes() == post.data

    described = json.loads((out / "posts.json").read_text())
    assert [p["id"] for p in described] == list(range(1, 46))
    assert {p["kind"] for p in described} >= {"truncated", "bomb", "html", "cmyk", "animated_gif"}
    assert all(p["md5"] == post.md5 and p["tags"] == list(post.tags) for p, post in zip(described, site.posts))

    truth = [json.loads(line) for line in (out / "ground_truth.jsonl").read_text().splitlines()]
    assert truth == site.ground_truth()
    assert f"wrote 45 posts with {sum(len(p.faces) for p in site.posts)} drawn faces" in result.output


def test_generate_takes_the_seed_from_an_override(tmp_path):
    result = CliRunner().invoke(cli, ["-S", "demo.seed=7", "demo-site", "generate", str(tmp_path), "--posts", "3"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    truth = [json.loads(line) for line in (tmp_path / "ground_truth.jsonl").read_text().splitlines()]
    assert truth == generate_site(seed=7, posts=3).ground_truth()


def test_generate_into_a_folder_of_an_earlier_run_leaves_only_this_site(tmp_path):
    for posts in ("6", "3"):
        result = CliRunner().invoke(cli, ["demo-site", "generate", str(tmp_path), "--posts", posts], catch_exceptions=False)
        assert result.exit_code == 0, result.output
    (tmp_path / "files" / "notes.txt").write_text("mine")  # not a post file: left alone
    CliRunner().invoke(cli, ["demo-site", "generate", str(tmp_path), "--posts", "3"], catch_exceptions=False)
    site = generate_site(seed=0, posts=3)
    expected = {f"{p.post_id:05d}-{p.kind}.{p.ext}" for p in site.posts} | {"notes.txt"}
    assert {p.name for p in (tmp_path / "files").iterdir()} == expected


def test_serve_refuses_negative_fault_counts():
    result = CliRunner().invoke(cli, ["demo-site", "serve", "--error-every", "-2"])
    assert result.exit_code == 2 and "--error-every" in result.output


def _get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), error.read()


@pytest.mark.timeout(60)
def test_serve_prints_a_loopback_url_that_answers():
    command = [sys.executable, "-m", "anigan", "demo-site", "serve", "--port", "0", "--posts", "5", "--rate-limit-every", "3", "--retry-after", "9"]
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()
        parts = urlsplit(url)
        assert parts.scheme == "http" and parts.hostname == "127.0.0.1" and parts.port, url
        status, _, body = _get(url + "/posts.json")
        assert status == 200 and [p["id"] for p in json.loads(body)] == [5, 4, 3, 2, 1]
        assert _get(url + "/robots.txt")[0] == 200
        status, headers, _ = _get(url + "/robots.txt")  # the third request: --rate-limit-every 3
        assert status == 429 and headers["Retry-After"] == "9"
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert proc.returncode is not None
