"""train: the DCGAN trainer."""

from dataclasses import dataclass

from anigan.params.schema import param


@dataclass(frozen=True)
class TrainParams:
    nz: int = param(100, min=1, help="length of the noise vector")
    ngf: int = param(64, min=1, help="generator width")
    ndf: int = param(64, min=1, help="discriminator width")
    lr: float = param(0.0002, gt=0.0, max=1.0, help="Adam learning rate (short name: lr)")
    beta1: float = param(0.5, min=0.0, lt=1.0, help="Adam beta1")
    beta2: float = param(0.999, min=0.0, lt=1.0, help="Adam beta2")
    batch_size: int = param(64, min=1, help="images per step")
    iterations: int = param(300, min=1, help="training steps (short name: iterations)")
    loss: str = param("bce", choices=("bce", "hinge"), help="GAN loss")
    seed: int = param(0, min=0, help="seed for weights, noise and batches")
    device: str = param("auto", choices=("auto", "cuda", "cpu", "mps"), help="auto picks cuda, then mps, then cpu")
    amp: bool = param(True, help="bf16 mixed precision on the GPU (ignored on the CPU)")
    compile: bool = param(False, help="torch.compile the models")
    channels_last: bool = param(True, help="channels-last memory format on the GPU")
    ema: bool = param(True, help="keep an exponential moving average of the generator")
    ema_decay: float = param(0.999, min=0.0, lt=1.0, help="EMA decay per step")
    sample_every: int = param(50, min=1, help="save a sample grid from fixed noise every N steps")
    checkpoint_every: int = param(100, min=1, help="save a checkpoint every N steps")
    log_every: int = param(10, min=1, help="read losses back from the device every N steps")
