"""split: a stable, leak-free train/test split, packed for training."""

from dataclasses import dataclass

from anigan.params.schema import param


@dataclass(frozen=True)
class SplitParams:
    test_ratio: float = param(0.1, min=0.0, lt=1.0, help="share of groups in the test split (short name: test_ratio)")
    salt: str = param("", help="change it to draw a different split on purpose")
    image_size: int = param(64, choices=(32, 64, 128), help="side of the packed images")
