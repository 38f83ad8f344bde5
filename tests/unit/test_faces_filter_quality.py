"""Each filter's precision and recall against planted defects in the truth."""

from preprocess.faces.quality import filter_quality


def test_precision_and_recall_count_only_matched_real_faces():
    truth = [
        {"box": [0, 0, 100, 100], "defect": "blurred"},
        {"box": [200, 0, 100, 100], "defect": "blurred"},
        {"box": [400, 0, 100, 100]},  # clean
        {"box": [600, 0, 100, 100], "defect": "monochrome"},
    ]
    kept = [{"box": [200, 2, 100, 100]}, {"box": [600, 0, 100, 100]}]
    filtered = [
        {"box": [1, 1, 98, 98], "reason": "blurry"},  # right
        {"box": [400, 0, 100, 100], "reason": "blurry"},  # a clean face dropped
        {"box": [900, 900, 80, 80], "reason": "blurry"},  # no true face there: not counted
    ]
    result = filter_quality([(kept, filtered, truth)])
    blurry = result["filters"]["blurry"]
    assert blurry["dropped"] == 2
    assert blurry["precision"] == 0.5
    assert blurry["recall"] == 0.5
    assert result["filters"]["monochrome"]["recall"] == 0.0
    assert result["filters"]["monochrome"]["precision"] is None
    assert result["faces_by_defect"]["blurred"] == {"blurry": 1, "kept": 1}


def test_faces_under_the_size_floor_are_left_out():
    truth = [{"box": [0, 0, 30, 30], "defect": "tiny"}]
    filtered = [{"box": [0, 0, 30, 30], "reason": "upscaled"}]
    assert filter_quality([([], filtered, truth)], min_size=48)["filters"]["upscaled"]["dropped"] == 0
    assert filter_quality([([], filtered, truth)], min_size=0)["filters"]["upscaled"]["recall"] == 1.0
