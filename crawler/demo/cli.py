"""`anigan demo-site`: serve the demo booru on loopback, or write its posts to a folder."""

from __future__ import annotations

from pathlib import Path

import click

from anigan.command import AniganContext, pass_anigan
from anigan.files import atomic_write_bytes, write_json, write_jsonl
from crawler.demo.generator import generate_site
from crawler.demo.server import LOOPBACK, DemoBooru, Faults


@click.group("demo-site")
def demo_site() -> None:
    """The demo booru: procedurally drawn anime faces behind real booru APIs, offline.

    It speaks the Danbooru (/posts.json), Gelbooru (/index.php?page=dapi) and Moebooru
    (/post.json) dialects, serves a robots.txt, and plants the bad files real crawls meet.
    """


@demo_site.command("serve")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="Port on 127.0.0.1; 0 picks a free one.")
@click.option("--posts", type=int, default=None, help="Number of posts [default: demo.posts].")
@click.option("--seed", type=int, default=None, help="Generator seed [default: demo.seed].")
@click.option("--rate-limit-every", type=click.IntRange(min=0), default=0, help="Answer every Nth request with 429 + Retry-After.")
@click.option("--retry-after", type=click.IntRange(min=0), default=1, show_default=True, help="Seconds in the Retry-After header.")
@click.option("--error-every", type=click.IntRange(min=0), default=0, help="Answer every Nth request with 500.")
@click.option("--delay", type=click.FloatRange(min=0.0), default=0.0, help="Seconds to wait before each response.")
@pass_anigan
def serve(obj: AniganContext, port, posts, seed, rate_limit_every, retry_after, error_every, delay) -> None:
    """Serve the demo booru on loopback until Ctrl-C; prints its URL first."""
    params = obj.params(**{"demo.posts": posts, "demo.seed": seed}).demo
    site = generate_site(params.seed, params.posts, params.defects)
    faults = Faults(rate_limit_every, retry_after, error_every, delay)
    booru = DemoBooru(site, LOOPBACK, faults, port=port)
    click.echo(booru.url, nl=True)
    click.echo(f"serving {len(site.posts)} posts (seed {params.seed}); try {booru.url}/posts.json?limit=5 ; Ctrl-C stops", err=True)
    try:
        booru.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        booru.stop()


@demo_site.command("generate")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--posts", type=int, default=None, help="Number of posts [default: demo.posts].")
@click.option("--seed", type=int, default=None, help="Generator seed [default: demo.seed].")
@pass_anigan
def generate(obj: AniganContext, out: Path, posts, seed) -> None:
    """Write every post's file, posts.json and ground_truth.jsonl to OUT (to look at them)."""
    params = obj.params(**{"demo.posts": posts, "demo.seed": seed}).demo
    site = generate_site(params.seed, params.posts, params.defects)
    names = {f"{post.post_id:05d}-{post.kind}.{post.ext}" for post in site.posts}
    for post in site.posts:
        atomic_write_bytes(out / "files" / f"{post.post_id:05d}-{post.kind}.{post.ext}", post.data)
    # files an earlier, larger or other-seeded run left would read as posts of this site
    for old in (out / "files").glob("[0-9][0-9][0-9][0-9][0-9]-*"):
        if old.name not in names:
            old.unlink()
    described = [
        {"id": p.post_id, "kind": p.kind, "md5": p.md5, "ext": p.ext, "width": p.width, "height": p.height,
         "tags": list(p.tags), "rating": p.rating, "duplicate_of": p.duplicate_of, "forbidden": p.forbidden}
        for p in site.posts
    ]
    write_json(out / "posts.json", described)
    write_jsonl(out / "ground_truth.jsonl", site.ground_truth())
    faces = sum(len(p.faces) for p in site.posts)
    click.echo(f"wrote {len(site.posts)} posts with {faces} drawn faces to {out}")
