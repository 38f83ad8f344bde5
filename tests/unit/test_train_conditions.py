"""ACGAN conditions: colour vocabularies and folding, labels, encode_conditions, grids, conditional networks and checkpoints."""

import numpy as np
import pytest
import torch

from anigan.errors import UserError
from gan import checkpoint as ckpt
from gan.conditions import (
    OTHER,
    color_vocabularies,
    encode_conditions,
    grid_conditions,
    label_rows,
    load_color_labels,
)
from gan.models import ConditionalDiscriminator, ConditionalGenerator, Generator, build_models

CONDITIONS = {"hair": ["black", "blue", "pink", OTHER], "eyes": ["green", "red"]}
ACGAN_META = {"model": "acgan", "conditions": CONDITIONS, "nz": 8}
DCGAN_META = {"nz": 8}  # written before ACGAN existed: no "model"


def rows(pairs):
    return [{"hair_color": hair, "eye_color": eyes} for hair, eyes in pairs]


def test_rare_and_missing_colours_fold_into_other_and_names_are_sorted():
    data = rows([("pink", "red")] * 3 + [("blue", "red")] * 2 + [("green", "red"), (None, "blue")] + [("black", "blue")] * 3)
    vocab = color_vocabularies(data, min_count=2)
    assert vocab == {"hair": ["black", "blue", "pink", OTHER], "eyes": ["blue", "red"]}  # no face needs eyes "other"
    assert color_vocabularies(data, min_count=3)["hair"] == ["black", "pink", OTHER]
    labels = label_rows(data, vocab)
    assert labels.dtype == np.int64 and labels.shape == (len(data), 2)
    assert labels[:3].tolist() == [[2, 1]] * 3
    assert labels[5].tolist() == [3, 1] and labels[6].tolist() == [3, 0]  # green (rare) and None -> other
    # Rows from elsewhere (the test split) may hold a colour the vocabulary lacks and no `other`: -1.
    assert label_rows(rows([("black", "yellow")]), vocab).tolist() == [[0, -1]]


def test_colour_values_that_are_not_words_count_as_unknown():
    data = rows([("pink", "red")] * 2 + [(["pink"], 3), ("", None)])  # a damaged or hand-made index
    vocab = color_vocabularies(data, min_count=1)
    assert vocab == {"hair": ["pink", OTHER], "eyes": ["red", OTHER]}
    assert label_rows(data, vocab).tolist() == [[0, 0], [0, 0], [1, 1], [1, 1]]


def test_training_labels_come_from_the_split_index(tmp_path):
    from anigan.files import write_jsonl

    write_jsonl(tmp_path / "train.jsonl", rows([("blue", "red"), ("pink", "red"), ("blue", "green")]))
    loaded = load_color_labels(tmp_path, count=3, min_count=1)
    assert loaded.conditions == {"hair": ["blue", "pink"], "eyes": ["green", "red"]}
    assert loaded.labels.tolist() == [[0, 1], [1, 1], [0, 0]]
    with pytest.raises(UserError, match="2 rows for 3 training images|3 rows for 4 training images"):
        load_color_labels(tmp_path, count=4, min_count=1)
    with pytest.raises(UserError, match=r"at least 2 hair colours with train.min_color_count = 3.*blue 2, pink 1"):
        load_color_labels(tmp_path, count=3, min_count=3)
    with pytest.raises(UserError, match="no dataset index"):
        load_color_labels(tmp_path / "nowhere", count=3, min_count=1)


def test_training_labels_equal_label_rows_of_the_index_and_are_read_as_a_stream(tmp_path):
    from anigan.files import write_jsonl
    from tests.faces_folder import traced_peak

    rng = np.random.default_rng(0)
    hair, eyes = ["black", "blue", "pink", "red", None, ["not a word"]], ["green", "red", "blue", None]
    index = [
        {"face_id": f"f{i}", "hair_color": hair[rng.integers(len(hair))], "eye_color": eyes[rng.integers(len(eyes))], "padding": "x" * 20_000}
        for i in range(300)
    ]
    write_jsonl(tmp_path / "train.jsonl", index)
    size = (tmp_path / "train.jsonl").stat().st_size
    loaded, peak = traced_peak(lambda: load_color_labels(tmp_path, count=300, min_count=40))
    assert loaded.conditions == color_vocabularies(index, min_count=40)
    assert np.array_equal(loaded.labels, label_rows(index, loaded.conditions)) and loaded.labels.dtype == np.int64
    assert peak < size / 20, f"peak {peak} bytes for a {size}-byte index"  # one row at a time, not the rows


def test_encode_conditions_fixes_named_colours_and_draws_the_rest_from_the_seed():
    drawn = encode_conditions(ACGAN_META, None, None, 200, seed=3)
    assert drawn.dtype == torch.long and drawn.shape == (200, 2)
    assert set(drawn[:, 0].tolist()) == {0, 1, 2, 3} and set(drawn[:, 1].tolist()) == {0, 1}  # uniform over each vocabulary
    assert torch.equal(drawn, encode_conditions(ACGAN_META, None, None, 200, seed=3))
    assert not torch.equal(drawn, encode_conditions(ACGAN_META, None, None, 200, seed=4))

    blue = encode_conditions(ACGAN_META, "Blue", None, 200, seed=3)
    assert (blue[:, 0] == 1).all() and torch.equal(blue[:, 1], drawn[:, 1])  # eyes drawn as without the fixed hair
    both = encode_conditions(ACGAN_META, "pink", "red", 5, seed=0)
    assert both.tolist() == [[2, 1]] * 5


def test_unknown_colours_and_colours_for_a_dcgan_are_one_line_errors():
    with pytest.raises(UserError) as unknown:
        encode_conditions(ACGAN_META, "green", None, 4, seed=0)
    assert str(unknown.value) == "hair colour 'green': this checkpoint knows black, blue, pink, other"
    with pytest.raises(UserError, match="eyes colour 'blue': this checkpoint knows green, red"):
        encode_conditions(ACGAN_META, None, "blue", 4, seed=0)
    assert encode_conditions(DCGAN_META, None, None, 4, seed=0) is None
    assert encode_conditions({**DCGAN_META, "model": "dcgan"}, None, None, 4, seed=0) is None
    with pytest.raises(UserError, match="unconditional DCGAN: it takes no hair or eye colour"):
        encode_conditions(DCGAN_META, "blue", None, 4, seed=0)


def test_a_grid_has_one_row_per_hair_colour_and_eye_colours_cycling_along_columns():
    labels = grid_conditions(CONDITIONS, columns=3)
    assert labels.tolist() == [[h, e] for h in range(4) for e in (0, 1, 0)]


@pytest.mark.parametrize("size", [32, 64, 128])
def test_conditional_networks_fit_each_image_size(size):
    generator, discriminator = build_models(8, 4, 4, size, seed=0, conditions=CONDITIONS)
    assert isinstance(generator, ConditionalGenerator) and isinstance(discriminator, ConditionalDiscriminator)
    labels = torch.tensor([[0, 1], [3, 0], [2, 1]])
    images = generator(torch.randn(3, 8, 1, 1), labels)
    assert images.shape == (3, 3, size, size)
    assert discriminator(images).shape == (3,)  # plain scoring, as for a DCGAN
    logits, hair, eyes = discriminator(images, classes=True)
    assert logits.shape == (3,) and hair.shape == (3, 4) and eyes.shape == (3, 2)


def test_the_label_changes_the_image_and_the_dcgan_refuses_labels():
    generator, _ = build_models(8, 4, 4, 32, seed=0, conditions=CONDITIONS)
    generator.eval()
    z = torch.randn(1, 8, 1, 1).repeat(2, 1, 1, 1)
    with torch.no_grad():
        images = generator(z, torch.tensor([[0, 0], [1, 0]]))
    assert not torch.equal(images[0], images[1])
    dcgan = Generator(8, 4, 32).eval()
    with torch.no_grad():
        assert torch.equal(dcgan(z), dcgan(z, None))
        with pytest.raises(ValueError, match="takes no labels"):
            dcgan(z, torch.tensor([[0, 0], [1, 0]]))


def acgan_state():
    generator, discriminator = build_models(8, 4, 4, 32, seed=0, conditions=CONDITIONS)
    return {
        "meta": {"model": "acgan", "conditions": CONDITIONS, "nz": 8, "ngf": 4, "ndf": 4, "image_size": 32, "iteration": 3,
                 "loss": "bce", "ema": False, "run": {"seed": 0}},
        "generator": generator.state_dict(),
        "generator_ema": None,
        "discriminator": discriminator.state_dict(),
    }


def test_an_acgan_checkpoint_loads_with_its_conditions_and_an_old_one_as_a_dcgan(tmp_path):
    ckpt.save_checkpoint(tmp_path / "acgan.pt", acgan_state())
    generator, meta = ckpt.load_generator(tmp_path / "acgan.pt", "cpu")
    assert isinstance(generator, ConditionalGenerator) and meta["model"] == "acgan" and meta["conditions"] == CONDITIONS
    labels = encode_conditions(meta, "blue", "red", 2, seed=0)
    with torch.no_grad():
        assert generator(torch.randn(2, 8, 1, 1), labels).shape == (2, 3, 32, 32)
    discriminator, _ = ckpt.load_discriminator(tmp_path / "acgan.pt", "cpu")
    assert isinstance(discriminator, ConditionalDiscriminator)

    generator, discriminator = build_models(8, 4, 4, 32, seed=0)
    old = {**acgan_state(), "meta": {k: v for k, v in acgan_state()["meta"].items() if k not in ("model", "conditions")}}
    old.update(generator=generator.state_dict(), discriminator=discriminator.state_dict())
    ckpt.save_checkpoint(tmp_path / "old.pt", old)
    generator, meta = ckpt.load_generator(tmp_path / "old.pt", "cpu")
    assert isinstance(generator, Generator) and meta["model"] == "dcgan"
    assert encode_conditions(meta, None, None, 2, seed=0) is None


def test_switching_model_changes_the_run_identity_and_old_dcgan_runs_still_match():
    from anigan.params import load_params
    from gan.conditions import ColorLabels
    from train.loop import changed_settings, run_identity

    labels = ColorLabels(CONDITIONS, np.array([[0, 1], [3, 0]]))
    dcgan = run_identity(load_params(None).train, 32, "abc")
    acgan = run_identity(load_params(None, {"train.model": "acgan"}).train, 32, "abc", labels)
    written_before_acgan = {k: v for k, v in dcgan.items() if k != "model"}
    assert changed_settings(dcgan, written_before_acgan) == []
    assert changed_settings(acgan, dcgan) == ["class_weight", "conditions", "labels_sha256", "model"]
    assert changed_settings(dcgan, acgan) == ["class_weight", "conditions", "labels_sha256", "model"]
    other_labels = ColorLabels(CONDITIONS, np.array([[0, 1], [2, 0]]))
    assert changed_settings(run_identity(load_params(None, {"train.model": "acgan"}).train, 32, "abc", other_labels), acgan) == ["labels_sha256"]
