"""The packed training set: checked on load, drawn in shuffled epochs with flips, on the device."""

import os
import tracemalloc

import numpy as np
import pytest
import torch

import train.data as train_data
from anigan.errors import UserError
from gan.packed import load_images
from train.data import BatchSource, copy_to_device, fits_on_device


def numbered_images(count, size=32):
    """Images whose pixel (0, 0) holds their index and whose left half is dark: flips and rows are traceable."""
    images = np.full((count, size, size, 3), 200, np.uint8)
    images[:, :, : size // 2] = 10
    images[:, 0, 0, 0] = np.arange(count)
    return images


def identify(batch):
    """(row index, flipped?) of each image in a [-1, 1] batch made from numbered_images."""
    pixels = ((batch + 1) * 127.5).round().to(torch.uint8)
    flipped = pixels[:, 0, 0, 0] == 200  # after a flip, the first column is the bright right edge
    index = torch.where(flipped, pixels[:, 0, 0, -1], pixels[:, 0, 0, 0])
    return index.tolist(), flipped.tolist()


def test_load_images_memory_maps_a_valid_array(tmp_path):
    np.save(tmp_path / "train.npy", numbered_images(5))
    images = load_images(tmp_path)
    assert isinstance(images, np.memmap) and images.shape == (5, 32, 32, 3)


@pytest.mark.parametrize(
    "array, message",
    [
        (np.zeros((4, 32, 32, 3), np.float32), "expected uint8"),
        (np.zeros((4, 32, 32), np.uint8), "expected uint8"),
        (np.zeros((4, 32, 16, 3), np.uint8), "expected uint8"),
        (np.zeros((4, 48, 48, 3), np.uint8), "48 is not one of 32, 64, 128"),
        (np.zeros((0, 32, 32, 3), np.uint8), "holds no images"),
    ],
)
def test_bad_arrays_are_refused_with_the_reason(tmp_path, array, message):
    np.save(tmp_path / "train.npy", array)
    with pytest.raises(UserError, match=message):
        load_images(tmp_path)


def test_a_missing_or_broken_file_says_to_run_the_split_stage(tmp_path):
    with pytest.raises(UserError, match="run the split stage"):
        load_images(tmp_path)
    (tmp_path / "train.npy").write_bytes(b"\x93NUMPY not really")
    with pytest.raises(UserError, match="not a readable .npy"):
        load_images(tmp_path)


def test_batches_are_scaled_to_minus_one_one_and_flipped_about_half_the_time():
    source = BatchSource(numbered_images(50), batch_size=50, device=torch.device("cpu"), seed=0)
    flips = 0
    for _ in range(8):
        batch = source.next()
        assert batch.shape == (50, 3, 32, 32) and batch.dtype == torch.float32
        assert batch.min() >= -1 and batch.max() <= 1
        # every image is the original or its mirror: dark on one half, bright on the other
        halves = batch[:, 1, 5, :16].mean(1), batch[:, 1, 5, 16:].mean(1)
        assert torch.all((halves[0] - halves[1]).abs() > 1.0)
        flips += sum(identify(batch)[1])
    assert 120 < flips < 280  # 400 draws at p = 1/2


def test_each_epoch_visits_every_image_once_even_across_batches():
    source = BatchSource(numbered_images(10), batch_size=4, device=torch.device("cpu"), seed=1)
    seen = []
    for _ in range(5):  # 20 draws = 2 epochs
        seen += identify(source.next())[0]
    assert sorted(seen[:10]) == list(range(10)) and sorted(seen[10:]) == list(range(10))
    assert seen[:10] != seen[10:]  # a new order each epoch


def test_a_set_smaller_than_a_batch_still_fills_the_batch():
    source = BatchSource(numbered_images(3), batch_size=8, device=torch.device("cpu"), seed=0)
    assert sorted(identify(source.next())[0][:6]) == [0, 0, 1, 1, 2, 2]


def test_state_dict_resumes_the_exact_batch_sequence():
    images = numbered_images(7)
    source = BatchSource(images, batch_size=3, device=torch.device("cpu"), seed=2)
    source.next()
    state = source.state_dict()
    expected = [source.next() for _ in range(4)]
    other = BatchSource(images, batch_size=3, device=torch.device("cpu"), seed=99)
    other.load_state_dict(state)
    assert all(torch.equal(a, other.next()) for a in expected)


def test_memory_mapped_host_batches_equal_on_device_batches(tmp_path):
    np.save(tmp_path / "train.npy", numbered_images(9))
    images = load_images(tmp_path)
    held = BatchSource(images, 4, torch.device("cpu"), seed=3, on_device=True)
    mapped = BatchSource(images, 4, torch.device("cpu"), seed=3, on_device=False)
    for _ in range(5):
        assert torch.equal(held.next(), mapped.next())


def test_channels_last_batches_have_channels_last_strides():
    source = BatchSource(numbered_images(4), 4, torch.device("cpu"), seed=0, channels_last=True)
    batch = source.next()
    assert batch.is_contiguous(memory_format=torch.channels_last)
    plain = BatchSource(numbered_images(4), 4, torch.device("cpu"), seed=0, channels_last=False).next()
    assert plain.is_contiguous() and torch.equal(batch, plain)


def test_fits_on_device_policy():
    cpu = torch.device("cpu")
    assert fits_on_device(10**6, cpu, "auto")
    assert not fits_on_device(10**18, cpu, "auto")
    assert fits_on_device(10**18, cpu, "always") and not fits_on_device(1, cpu, "never")


@pytest.mark.parametrize("on_device", [True, False])
def test_labels_travel_with_their_images_through_shuffles_and_flips(on_device):
    labels = np.stack([np.arange(20) % 3, np.arange(20) % 5], axis=1)  # row i: [i % 3, i % 5]
    source = BatchSource(numbered_images(20), 6, torch.device("cpu"), seed=4, on_device=on_device, labels=labels)
    flipped_any = False
    for _ in range(7):  # crosses epoch boundaries
        batch, batch_labels = source.next_with_labels()
        index, flipped = identify(batch)
        flipped_any |= any(flipped)
        assert batch_labels.dtype == torch.long and batch_labels.tolist() == [[i % 3, i % 5] for i in index]
    assert flipped_any
    drawn = source.random_labels(500, torch.Generator().manual_seed(0))
    assert drawn.shape == (500, 2) and {tuple(row) for row in drawn.tolist()} == {(i % 3, i % 5) for i in range(20)}


def test_a_source_without_labels_has_none_to_give():
    source = BatchSource(numbered_images(4), 2, torch.device("cpu"), seed=0)
    with pytest.raises(ValueError, match="without labels"):
        source.next_with_labels()
    with pytest.raises(ValueError, match="3 labels for 4 images"):
        BatchSource(numbered_images(4), 2, torch.device("cpu"), seed=0, labels=np.zeros((3, 2), np.int64))


def test_fits_on_device_counts_every_cpu_rank_holding_a_copy():
    cpu = torch.device("cpu")
    total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    assert fits_on_device(total // 8, cpu, "auto", copies=1)
    assert not fits_on_device(total // 8, cpu, "auto", copies=4)


@pytest.mark.parametrize("device", ["cpu", "meta"])  # meta: a device other than the host, holding no data
def test_the_set_goes_to_the_device_in_chunks_never_as_a_whole_host_copy(tmp_path, device):
    images = numbered_images(64, size=64)  # 768 KiB
    np.save(tmp_path / "train.npy", images)
    mapped = load_images(tmp_path)
    chunk = images.nbytes // 8
    tracemalloc.start()  # numpy reports its allocations to tracemalloc; the device tensor is torch's
    try:
        copied = copy_to_device(mapped, torch.device(device), chunk_bytes=chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= chunk + 64 * 1024  # one chunk staged at most, never the set
    assert copied.shape == images.shape and copied.dtype == torch.uint8 and copied.device.type == device
    if device == "cpu":
        np.testing.assert_array_equal(copied.numpy(), images)


def test_a_set_held_on_the_device_is_copied_from_the_memory_map_in_chunks(tmp_path, monkeypatch):
    np.save(tmp_path / "train.npy", numbered_images(40))
    sizes = []
    real = copy_to_device

    def recording(images, device, chunk_bytes=train_data.COPY_CHUNK_BYTES):
        sizes.append(chunk_bytes)
        return real(images, device, chunk_bytes)

    monkeypatch.setattr(train_data, "copy_to_device", recording)
    source = BatchSource(load_images(tmp_path), 8, torch.device("cpu"), seed=0, on_device=True)
    assert sizes == [train_data.COPY_CHUNK_BYTES] and isinstance(source.images, torch.Tensor)
    rows, _ = identify(source.next())
    assert len(rows) == 8 and set(rows) <= set(range(40))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_the_copy_to_a_cuda_gpu_stages_one_chunk_and_keeps_every_pixel(tmp_path):
    images = numbered_images(64, size=64)
    np.save(tmp_path / "train.npy", images)
    chunk = images.nbytes // 8
    tracemalloc.start()
    try:
        copied = copy_to_device(load_images(tmp_path), torch.device("cuda"), chunk_bytes=chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= chunk + 64 * 1024
    np.testing.assert_array_equal(copied.cpu().numpy(), images)
