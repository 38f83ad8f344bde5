"""The demo booru: a loopback site of procedurally drawn anime faces, the offline default source."""

from dataclasses import dataclass

from anigan.params.schema import param


@dataclass(frozen=True)
class DemoParams:
    seed: int = param(0, min=0, help="seed of the generator: same seed, same posts, same bytes")
    posts: int = param(500, min=1, max=100_000, help="number of posts the demo booru serves")
    defects: float = param(0.0, min=0.0, max=1.0, help="share of ordinary posts drawn with a planted defect (blurred, monochrome, tiny, cut-off, text), for measuring the faces stage's filters")
