"""dedupe: exact and near-duplicate faces, grouped; one kept per group."""

from dataclasses import dataclass

from anigan.params.schema import param


@dataclass(frozen=True)
class DedupeParams:
    max_distance: int = param(8, min=0, max=20, help="Hamming distance between 64-bit perceptual hashes that counts as a near duplicate (hashes differ in an even number of bits)")
    image_max_distance: int = param(
        10, min=0, max=20,
        help="Hamming distance between 64-bit pHashes of whole source images that counts as a repost; their faces with matching boxes join one group (0: off)",
    )
    box_iou: float = param(0.5, gt=0.0, max=1.0, help="IoU of face boxes (relative to their image's size) above which faces of two near-duplicate images are the same face")
    workers: int = param(0, min=0, help="worker processes for hashing; 0 means all cores")
