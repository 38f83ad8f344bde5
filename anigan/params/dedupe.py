"""dedupe: exact and near-duplicate faces, grouped; one kept per group."""

from dataclasses import dataclass

from anigan.params.schema import param


@dataclass(frozen=True)
class DedupeParams:
    max_distance: int = param(8, min=0, max=20, help="Hamming distance between 64-bit perceptual hashes that counts as a near duplicate (hashes differ in an even number of bits)")
    workers: int = param(0, min=0, help="worker processes for hashing; 0 means all cores")
