"""evaluate: score the generator on the held-out test split."""

from dataclasses import dataclass

from anigan.params.schema import param

# What `anigan evaluate` can compute (evaluate/metrics/<name>.py each), in the default order.
METRICS = ("fid_kid", "face_rate", "msssim", "memorization", "overfitting", "condition_accuracy")


@dataclass(frozen=True)
class EvaluateParams:
    seed: int = param(0, min=0, help="seed of the generated samples and of every sampled subset")
    num_samples: int = param(256, min=2, help="generated samples to score")
    metrics: tuple[str, ...] = param(
        METRICS,
        choices=METRICS,
        help="metrics to compute (condition_accuracy only for ACGAN checkpoints; fid_kid only with the weights file)",
    )
    checkpoint: str | None = param(None, help="checkpoint to score; null means <paths.train_run>/checkpoints/latest.pt")
    inception_weights: str = param(
        "models/weights-inception-2015-12-05-6726825d.pth",
        help="torch-fidelity's FID Inception weights file; FID/KID are skipped when it is absent",
    )
    kid_subsets: int = param(100, min=1, help="random subsets averaged for KID")
    kid_subset_size: int = param(1000, min=2, help="images per KID subset (capped at the smaller set)")
    msssim_pairs: int = param(1000, min=1, help="random sample pairs averaged for MS-SSIM diversity")
    face_upscale: int = param(128, min=32, help="side smaller images are upscaled to before animeface looks for a face")
    nn_pairs: int = param(8, min=0, help="nearest-neighbour pairs shown in the report")
    nn_train_references: int = param(
        50000, min=1, help="training images the nearest-neighbour search compares with (a seeded subset when there are more)"
    )
    nn_test_images: int = param(1000, min=1, help="test images measured as the memorization yardstick (a seeded subset when there are more)")
    real_test_images: int = param(
        10000, min=2, help="test images FID/KID and the colour classifier's test accuracy use (a seeded subset when there are more)"
    )
    batch_size: int = param(64, min=1, help="batch size for generation and feature extraction")
    classifier_steps: int = param(200, min=1, help="training steps of the colour classifier behind condition accuracy (ACGAN checkpoints)")
    classifier_batch_size: int = param(32, min=1, help="faces per training step of the colour classifier")
    device: str = param("auto", choices=("auto", "cuda", "cpu", "mps"), help="auto picks cuda, then mps, then cpu")
