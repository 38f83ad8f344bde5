"""train: the GAN trainer (DCGAN, or ACGAN conditioned on hair and eye colour)."""

from dataclasses import dataclass

from anigan.params.schema import param


@dataclass(frozen=True)
class TrainParams:
    model: str = param(
        "dcgan",
        choices=("dcgan", "acgan"),
        help="dcgan: unconditional; acgan: the generator also takes hair and eye colour, D also classifies them",
    )
    class_weight: float = param(1.0, gt=0.0, help="acgan: weight of the hair and eye class losses against the real/fake loss")
    min_color_count: int = param(
        10,
        min=1,
        help="acgan: hair or eye colours with fewer training faces than this fold into `other`",
    )
    nz: int = param(100, min=1, help="length of the noise vector")
    ngf: int = param(32, min=1, help="generator width (channels of its last hidden layer)")
    ndf: int = param(32, min=1, help="discriminator width (channels of its first layer)")
    lr: float = param(0.0002, gt=0.0, help="Adam learning rate (short name: lr)")
    beta1: float = param(0.5, min=0.0, lt=1.0, help="Adam beta1")
    beta2: float = param(0.999, min=0.0, lt=1.0, help="Adam beta2")
    batch_size: int = param(64, min=1, help="images per step on each training process")
    iterations: int = param(600, min=1, help="training steps (short name: iterations); raising it resumes a finished run")
    loss: str = param("bce", choices=("bce", "hinge"), help="GAN loss: bce (the paper's, non-saturating) or hinge")
    augment: tuple[str, ...] = param(
        ("color", "translation", "cutout"),
        choices=("color", "translation", "cutout"),
        help="DiffAugment for D on real and generated images: keeps D from memorising a small set; [] for none",
    )
    seed: int = param(0, min=0, help="seed for weights, noise and batches")
    device: str = param("auto", choices=("auto", "cuda", "cpu", "mps"), help="auto picks cuda, then mps, then cpu")
    amp: bool = param(True, help="bf16 mixed precision on CUDA (ignored elsewhere)")
    compile: bool = param(False, help="torch.compile the models (slow first steps, faster after; needs a C++ compiler on CPU)")
    channels_last: bool = param(True, help="channels-last memory layout (faster convolutions on GPUs and on CPUs)")
    ema: bool = param(True, help="keep an exponential moving average of the generator for samples and evaluation")
    ema_decay: float = param(0.999, min=0.0, lt=1.0, help="EMA decay per step (ramped up from 0.1 at the start)")
    data_on_device: str = param("auto", choices=("auto", "always", "never"), help="copy the whole training set to the device: auto when it fits")
    deterministic: bool = param(False, help="bit-reproducible kernels (slower); a resumed run then equals an uninterrupted one")
    sample_every: int = param(50, min=1, help="save a sample grid from fixed noise every N steps")
    checkpoint_every: int = param(100, min=1, help="save a checkpoint every N steps (and on Ctrl-C / SIGTERM)")
    keep_checkpoints: int = param(2, min=0, help="periodic step_NNNNNN.pt snapshots kept besides latest.pt")
    log_every: int = param(10, min=1, help="read losses back from the device and log them every N steps")
