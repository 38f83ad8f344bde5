"""Shared fixtures: the demo booru, generated raw folders, tiny packed datasets."""

import io
import json
from pathlib import Path

import numpy as np
import pytest

TINY_HAIR = ("black", "blonde", "blue", "pink")
TINY_EYES = ("blue", "green", "red")


def make_tiny_dataset(folder, train: int = 24, test: int = 8, size: int = 32, seed: int = 0, colors: bool = False) -> Path:
    """Write a packed dataset like the split stage's (docs/architecture.md) into `folder` and return it.

    Each image is a simple drawn "face": a skin disc with two dark eyes on a random flat
    background, with a random shift, so a generator has some structure to learn. Files:
    train.npy / test.npy (uint8, N x size x size x 3), train.jsonl / test.jsonl, card.json.
    With `colors`, face i has hair TINY_HAIR[i % 4] (a cap over the disc) and eyes
    TINY_EYES[i // 4 % 3], drawn in the faces stage's reference colours and named in the index.
    """
    from anigan.colors import EYE_COLORS, HAIR_COLORS

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    card = {"image_size": size, "splits": {}}
    for split, count in (("train", train), ("test", test)):
        images = np.empty((count, size, size, 3), np.uint8)
        for i in range(count):
            image = np.empty((size, size, 3), np.uint8)
            image[:] = rng.integers(0, 256, 3)
            cy, cx = size / 2 + rng.uniform(-size / 10, size / 10, 2)
            radius = size * rng.uniform(0.28, 0.36)
            hair, eyes = TINY_HAIR[i % len(TINY_HAIR)], TINY_EYES[i // len(TINY_HAIR) % len(TINY_EYES)]
            disc = (yy - cy) ** 2 + (xx - cx) ** 2 < radius**2
            if colors:
                image[((yy - cy) ** 2 + (xx - cx) ** 2 < (radius * 1.25) ** 2) & (yy < cy)] = HAIR_COLORS[hair]
            image[disc & ~((yy < cy - radius * 0.35) & bool(colors))] = (250, 220, 190)
            for side in (-1, 1):
                eye = (yy - (cy - radius * 0.1)) ** 2 + (xx - (cx + side * radius * 0.4)) ** 2 < (radius * 0.18) ** 2
                image[eye] = EYE_COLORS[eyes] if colors else rng.integers(0, 120, 3)
            images[i] = image
        np.save(folder / f"{split}.npy", images)
        rows = [
            {
                "face_id": f"{split}{i:04d}",
                "group_id": f"g-{split}{i:04d}",
                "hair_color": TINY_HAIR[i % len(TINY_HAIR)] if colors else None,
                "eye_color": TINY_EYES[i // len(TINY_HAIR) % len(TINY_EYES)] if colors else None,
            }
            for i in range(count)
        ]
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        card["splits"][split] = {"faces": count}
    card["faces"] = train + test
    (folder / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    return folder


@pytest.fixture
def tiny_dataset(tmp_path) -> Path:
    """A packed 32x32 dataset (24 train, 8 test images) in a temporary folder: see make_tiny_dataset."""
    return make_tiny_dataset(tmp_path / "dataset")


@pytest.fixture
def tiny_color_dataset(tmp_path) -> Path:
    """Like tiny_dataset, with hair and eye colours drawn and named (4 hair, 3 eye colours): see make_tiny_dataset."""
    return make_tiny_dataset(tmp_path / "color_dataset", colors=True)


@pytest.fixture
def one_torch_thread():
    """torch on one CPU thread for the test, the previous count restored after.

    Float sums (and so a trained network's numbers) depend on how many threads share them, and on a
    shared 2-core machine two busy-waiting threads can run several times slower than one.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _decodes(data: bytes, max_pixels: int = 40_000_000) -> bool:
    """True when Pillow reads the whole image and it is not a decompression bomb."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.size[0] * im.size[1] > max_pixels:
                return False
            im.load()
        return True
    except Exception:
        return False


def write_demo_raw_folder(folder, posts: int = 60, seed: int = 0, include_broken: bool = False, kinds=None, shard_size: int = 16, defects: float = 0.0) -> Path:
    """Write the demo booru's posts in the crawl stage's raw layout (docs/architecture.md) and return the folder.

    `shards/raw-<NNNNNN>.tar` (members `<sha256>.<ext>`, `shard_size` a shard), `manifest.jsonl`
    (one record per image ID, first post wins, as for exact duplicates, with its shard place) and `ground_truth.jsonl` (the demo's records for the images
    written). By default only what a crawl keeps: decodable, not behind robots.txt. With
    `include_broken`, truncated, empty, HTML and bomb files are written too, for stages that must
    reject them. `kinds` (a set of demo post kinds) keeps only those posts; `defects` plants
    quality defects on that share of posts (the ground truth names each). No server is started:
    files come straight from the generator.
    """
    from anigan.ids import sha256_hex
    from anigan.shards import ShardWriter
    from crawler.demo.generator import generate_site

    folder = Path(folder)
    writer = ShardWriter(folder / "shards", "raw", shard_size)
    site = generate_site(seed=seed, posts=posts, defects=defects)
    truth = {r["post_id"]: r for r in site.ground_truth()}
    manifest, ground_truth, written = [], [], set()
    for post in site.posts:
        if kinds is not None and post.kind not in kinds:
            continue
        if not include_broken and (post.forbidden or not _decodes(post.data)):
            continue
        image_id = sha256_hex(post.data)
        if image_id in written:
            continue
        written.add(image_id)
        member = writer.add(f"{image_id}.{post.ext}", post.data)
        manifest.append(
            {
                "image_id": image_id,
                "source": "demo",
                "post_id": post.post_id,
                "post_url": f"http://demo.invalid/posts/{post.post_id}",
                "file_url": f"http://demo.invalid/images/{post.md5}.{post.ext}",
                "md5": post.md5,
                "width": post.width,
                "height": post.height,
                "tags": list(post.tags),
                "rating": post.rating,
                "fetched_at": "2026-01-01T00:00:00+00:00",
                **member.fields(),
            }
        )
        ground_truth.append({**truth[post.post_id], "image_id": image_id})
    writer.close()
    (folder / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in manifest))
    (folder / "ground_truth.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ground_truth))
    return folder


@pytest.fixture(scope="session")
def demo_raw_folder(tmp_path_factory) -> Path:
    """A raw folder (as the crawl writes it) of 60 demo posts, seed 0, with ground_truth.jsonl.

    Shared by the whole session: read it, never write into it (copy it first).
    """
    return write_demo_raw_folder(tmp_path_factory.mktemp("demo_raw") / "raw")


@pytest.fixture(scope="session")
def demo_site():
    """The demo booru's 60 posts for seed 0 (every planted edge case included); generated once."""
    from crawler.demo.generator import generate_site

    return generate_site(seed=0, posts=60)


@pytest.fixture
def demo_booru(demo_site):
    """`demo_site` served on an ephemeral loopback port, without faults; yields the running DemoBooru."""
    from crawler.demo.server import DemoBooru

    with DemoBooru(demo_site) as booru:
        yield booru


def write_random_inception_weights(path, seed: int = 0) -> Path:
    """Save randomly initialised weights of torch-fidelity's FID Inception network to `path`.

    The real weights cannot be downloaded here; a file of the same network class with random
    weights exercises the whole FID/KID path. torch-fidelity's class loads weights in its
    constructor, so a subclass that skips that one load builds the random network to save.
    Convolutions get He initialisation so that features keep a usable scale through the
    network's depth (PyTorch's default shrinks them to ~1e-8).
    """
    import torch
    from torch import nn
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    class RandomInception(FeatureExtractorInceptionV3):
        def load_state_dict(self, state_dict, strict=True, assign=False):
            return None  # keep the random initialisation

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({}, path)  # the constructor wants a readable file; its contents are ignored above
    rng_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        network = RandomInception("random-inception", ["2048"], feature_extractor_weights_path=str(path))
        for module in network.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    finally:
        torch.random.set_rng_state(rng_state)
    torch.save(network.state_dict(), path)
    return path


@pytest.fixture(scope="session")
def random_inception_weights(tmp_path_factory) -> Path:
    """A weights file for torch-fidelity's FID Inception network with random weights: see write_random_inception_weights."""
    return write_random_inception_weights(tmp_path_factory.mktemp("inception") / "random-inception.pth")


def make_demo_face_dataset(folder, posts: int = 300, size: int = 32, test_ratio: float = 0.1, seed: int = 0) -> Path:
    """A packed dataset (split stage layout) of real demo faces, cut from the demo booru's ground-truth boxes.

    Only original scene posts are used (no duplicates, no broken files); each face is cut like
    the faces stage cuts it (square, margin 0.25, shifted inside the image) and resized to
    `size`. Faces of one image stay on one side; an image goes to test when
    stable_fraction(image ID) < test_ratio. No detector runs, so it is fast and exact.
    """
    from PIL import Image

    from anigan.ids import face_id, stable_fraction
    from crawler.demo.generator import generate_site
    from preprocess.faces.crop import cut_square, square_crop

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sides: dict[str, tuple[list, list]] = {"train": ([], []), "test": ([], [])}
    for post in generate_site(seed=seed, posts=posts).posts:
        if post.kind != "scene" or post.forbidden or not post.faces:
            continue
        with Image.open(io.BytesIO(post.data)) as im:
            picture = im.convert("RGB")
        image_id = post.image_id
        side = "test" if stable_fraction(image_id) < test_ratio else "train"
        for face in post.faces:
            crop = square_crop(face.box, 0.25, picture.size, "shift")
            sides[side][0].append(np.asarray(cut_square(picture, crop, size)))
            sides[side][1].append(
                {"face_id": face_id(image_id, crop), "group_id": image_id[:16], "hair_color": face.hair_color, "eye_color": face.eye_color}
            )
    card = {"image_size": size, "splits": {}}
    for side, (images, rows) in sides.items():
        np.save(folder / f"{side}.npy", np.stack(images) if images else np.zeros((0, size, size, 3), np.uint8))
        (folder / f"{side}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        card["splits"][side] = {"faces": len(rows)}
    card["faces"] = sum(len(rows) for _, rows in sides.values())
    (folder / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    return folder
