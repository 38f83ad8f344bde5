"""evaluate: score the generator on the held-out test split."""

from dataclasses import dataclass

from anigan.params.schema import param


@dataclass(frozen=True)
class EvaluateParams:
    seed: int = param(0, min=0, help="seed of the generated samples")
    num_samples: int = param(256, min=2, help="generated samples to score")
    inception_weights: str = param("models/pt_inception-2015-12-05-6726825d.pth", help="local FID Inception weights; FID/KID are skipped when absent")
    batch_size: int = param(64, min=1, help="batch size for feature extraction")
    device: str = param("auto", choices=("auto", "cuda", "cpu", "mps"), help="auto picks cuda, then mps, then cpu")
