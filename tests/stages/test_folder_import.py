"""The folder source: a folder made like a gallery-dl download (images with `--write-metadata`
sidecars, broken files, images without metadata) or a Danbooru dump (JSON lines of posts) is
imported into the same raw folder contract a crawl writes, and never modified."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from anigan.params import load_params
from crawler.crawl import run_crawl
from crawler.demo.generator import generate_site
from crawler.demo.server import DANBOORU_RATINGS, DemoBooru
from tests.crawl_oracle import ALL_RATINGS, REASON_BY_KIND, read, stored_files

POSTS = 40
# Scenes written without metadata, as files a user saved by hand.
WITHOUT_METADATA = 3


@pytest.fixture(scope="module")
def site():
    return generate_site(0, POSTS)


def danbooru_record(post) -> dict:
    """A post as Danbooru's /posts.json describes it, as gallery-dl writes it beside the file."""
    return {
        "id": post.post_id, "md5": post.md5, "file_ext": post.ext, "file_size": len(post.data),
        "image_width": post.width, "image_height": post.height, "tag_string": " ".join(post.tags),
        "rating": DANBOORU_RATINGS[post.rating], "category": "danbooru", "subcategory": "tag",
    }


def gallery_dl_folder(root: Path, site) -> dict[int, Path]:
    """gallery-dl's layout: <root>/danbooru/<query>/danbooru_<id>_<md5>.<ext> with a sidecar each
    (half named `<file>.<ext>.json`, half `<file>.json`), except a few plain scenes."""
    folder = root / "danbooru" / "1girl"
    folder.mkdir(parents=True)
    plain = [p.post_id for p in site.posts if p.kind == "scene" and not p.forbidden][:WITHOUT_METADATA]
    files = {}
    for post in site.posts:
        if post.forbidden:  # the crawl may not fetch these; the folder would not have them either
            continue
        path = folder / f"danbooru_{post.post_id}_{post.md5}.{post.ext}"
        path.write_bytes(post.data)
        files[post.post_id] = path
        if post.post_id in plain:
            continue
        sidecar = path.with_name(path.name + ".json") if post.post_id % 2 else path.with_suffix(".json")
        sidecar.write_text(json.dumps(danbooru_record(post)))
    (folder / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")  # a video: skipped, not refused
    return files


def make_params(out: Path, **crawl):
    overrides = {"paths.raw": str(out), "crawl.ratings": ALL_RATINGS, "crawl.limit": 1000, "crawl.page_size": 10,
                 **{f"crawl.{k}": v for k, v in crawl.items()}}
    return load_params(None, overrides)


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


@pytest.fixture(scope="module")
def imported(tmp_path_factory, site):
    root = tmp_path_factory.mktemp("downloads")
    files = gallery_dl_folder(root, site)
    before = snapshot(root)
    out = root.parent / "raw-folder"
    summary = run_crawl(make_params(out, source="folder", folder=str(root)))
    assert snapshot(root) == before, "the folder was modified"
    return root, files, out, summary


@pytest.fixture(scope="module")
def crawled(tmp_path_factory, site):
    out = tmp_path_factory.mktemp("crawl") / "raw"
    with DemoBooru(site) as booru:
        run_crawl(make_params(out, base_url=booru.url))
    return out


def test_a_gallery_dl_folder_imports_the_images_a_crawl_keeps(imported, crawled, site):
    root, files, out, summary = imported
    assert summary.stopped == "finished" and summary.source == "folder"
    assert {r["image_id"] for r in read(out, "manifest.jsonl")} == {r["image_id"] for r in read(crawled, "manifest.jsonl")}
    stored = {name.split(".")[0] for name in stored_files(out)}
    assert stored == {r["image_id"] for r in read(out, "manifest.jsonl")}
    assert summary.skipped == {"not_an_image_post": 1}


def test_metadata_gives_post_ids_tags_and_ratings_and_images_without_it_are_kept(imported, site):
    root, files, out, _ = imported
    records = read(out, "manifest.jsonl")
    described = [r for r in records if isinstance(r["post_id"], int)]
    bare = [r for r in records if not isinstance(r["post_id"], int)]
    assert len(bare) == WITHOUT_METADATA
    for record in described:
        post = site.by_id(record["post_id"])
        assert record["tags"] == list(post.tags) and record["rating"] == post.rating and record["md5"] == post.md5
        assert record["source"] == "folder" and (root / record["file_url"]).is_file()
    for record in bare:
        assert record["tags"] == [] and record["rating"] is None and (root / record["post_id"]).is_file()


def test_broken_files_are_refused_with_the_crawls_reasons(imported, site):
    _, _, out, _ = imported
    reasons = {r["post_id"]: r["reason"] for r in read(out, "rejects.jsonl")}
    want = {p.post_id: REASON_BY_KIND[p.kind] for p in site.posts if p.kind in REASON_BY_KIND and not p.forbidden}
    assert reasons == want


def test_ratings_and_tag_query_filter_the_folder_like_a_crawl(tmp_path, imported, site):
    root, _, _, _ = imported
    out = tmp_path / "raw"
    summary = run_crawl(make_params(out, source="folder", folder=str(root), ratings=["general"], tags="solo"))
    records = read(out, "manifest.jsonl")
    assert records and all(r["rating"] == "general" and "solo" in r["tags"] for r in records)
    assert summary.skipped["rating"] > 0 and summary.skipped["tags"] > 0


def test_a_rerun_imports_only_what_is_new(tmp_path, site):
    root = tmp_path / "downloads"
    files = gallery_dl_folder(root, site)
    out = tmp_path / "raw"
    params = make_params(out, source="folder", folder=str(root))
    first = run_crawl(params)
    newest = max(files)
    extra = generate_site(0, POSTS + 1).by_id(POSTS + 1)
    (files[newest].parent / f"danbooru_{extra.post_id}_{extra.md5}.{extra.ext}").write_bytes(extra.data)
    second = run_crawl(params)
    assert second.new == 1 and second.kept == first.kept + 1 and second.rejected_now == 0
    assert second.skipped["already_have"] == len(read(out, "manifest.jsonl")) - 1 + len(read(out, "rejects.jsonl"))


def test_a_danbooru_dump_of_json_lines_is_read(tmp_path, site):
    root = tmp_path / "dump"
    (root / "original" / "0000").mkdir(parents=True)
    (root / "metadata").mkdir()
    scenes = [p for p in site.posts if p.kind == "scene" and not p.forbidden][:6]
    for post in scenes:
        (root / "original" / "0000" / f"{post.post_id}.{post.ext}").write_bytes(post.data)
    lines = "".join(json.dumps(danbooru_record(p)) + "\n" for p in scenes)
    (root / "metadata" / "posts000000000000.json").write_text(lines)
    out = tmp_path / "raw"
    run_crawl(make_params(out, source="folder", folder=str(root)))
    records = read(out, "manifest.jsonl")
    assert sorted(r["post_id"] for r in records) == sorted(p.post_id for p in scenes)
    assert all(r["tags"] == list(site.by_id(r["post_id"]).tags) for r in records)


def test_a_missing_folder_is_one_clear_error(tmp_path):
    from anigan.errors import UserError

    with pytest.raises(UserError, match="crawl.folder"):
        run_crawl(make_params(tmp_path / "raw", source="folder", folder=str(tmp_path / "nope")))


def _run_faces():
    try:
        from preprocess.faces.stage import run_faces
    except ImportError:  # the faces stage before it became a package
        from preprocess.faces import run_faces  # type: ignore[no-redef]
    return run_faces


@pytest.mark.slow
def test_the_faces_of_an_imported_folder_match_those_of_a_crawl(tmp_path, imported, crawled):
    run_faces = _run_faces()
    _, _, folder_raw, _ = imported
    found = {}
    for name, raw in (("folder", folder_raw), ("crawl", crawled)):
        params = load_params(None, {"paths.raw": str(raw), "paths.faces": str(tmp_path / f"faces-{name}")})
        run_faces(params)
        found[name] = sorted((r["face_id"], r["image_id"], tuple(r["box"])) for r in read(tmp_path / f"faces-{name}", "manifest.jsonl"))
    assert found["folder"] and found["folder"] == found["crawl"]
