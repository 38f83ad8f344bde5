"""params.yaml loading: defaults, short names, overrides, and one clear line for each mistake."""

import pytest

from anigan.params import ParamsError, load_params


def write(tmp_path, text):
    p = tmp_path / "params.yaml"
    p.write_text(text)
    return p


def test_defaults_load_without_a_file():
    params = load_params(None)
    assert params.crawl.source == "demo"
    assert params.split.test_ratio == pytest.approx(0.1)


def test_repo_params_yaml_is_valid_and_matches_the_defaults_it_names():
    params = load_params("params.yaml")
    assert params.train.lr == pytest.approx(0.0002)
    assert params.paths.raw == "data/raw"


def test_short_names_reach_their_section(tmp_path):
    params = load_params(write(tmp_path, "lr: 0.001\niterations: 7\ntest_ratio: 0.25\n"))
    assert (params.train.lr, params.train.iterations, params.split.test_ratio) == (0.001, 7, 0.25)


def test_short_name_and_nested_key_together_is_an_error(tmp_path):
    with pytest.raises(ParamsError, match=r"lr and train\.lr"):
        load_params(write(tmp_path, "lr: 0.001\ntrain:\n  lr: 0.002\n"))


def test_overrides_win_over_the_file(tmp_path):
    params = load_params(write(tmp_path, "lr: 0.001\n"), {"lr": 0.5, "crawl.limit": 3})
    assert params.train.lr == 0.5 and params.crawl.limit == 3


@pytest.mark.parametrize(
    "text, expected",
    [
        ("train:\n  lr: -1\n", r"train\.lr = -1: must be a number > 0"),
        ("train:\n  batch_size: 2.5\n", r"train\.batch_size = 2\.5: must be an integer"),
        ("train:\n  amp: 1\n", r"train\.amp = 1: must be true/false"),
        ("crawl:\n  source: flickr\n", r"crawl\.source = 'flickr': must be one of demo, danbooru"),
        ("crawl:\n  ratings: [general, nsfw]\n", r"crawl\.ratings = .*must be .*general, sensitive"),
        ("crawl:\n  sorce: demo\n", r"crawl\.sorce: unknown key \(did you mean source\?\)"),
        ("trian:\n  lr: 1\n", r"trian: unknown key \(did you mean train\?\)"),
        ("split:\n  image_size: 48\n", r"split\.image_size = 48: must be one of 32, 64, 128"),
        ("faces: 3\n", r"faces: must be a mapping"),
        ("- a\n- b\n", r"must be a mapping of sections"),
    ],
)
def test_bad_values_name_the_key_the_value_and_what_is_allowed(tmp_path, text, expected):
    with pytest.raises(ParamsError, match=expected):
        load_params(write(tmp_path, text))


def test_params_are_frozen():
    params = load_params(None)
    with pytest.raises(AttributeError):
        params.train.lr = 1.0  # type: ignore[misc]


def test_missing_explicit_file_is_an_error(tmp_path):
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "nope.yaml")


def test_a_list_param_accepts_comma_separated_text_from_the_command_line():
    assert load_params(None, {"crawl.ratings": "general,explicit"}).crawl.ratings == ("general", "explicit")
