"""faces: detect anime faces, crop them square with a margin, resize, name their colours."""

from dataclasses import dataclass

from anigan.params.schema import param


@dataclass(frozen=True)
class FacesParams:
    detector: str = param("animeface", choices=("animeface", "cascade", "both"), help="face detector (both: the union, overlaps merged)")
    cascade_path: str | None = param(None, help="OpenCV cascade XML for detector: cascade")
    cascade_neighbors: int = param(5, min=1, help="cascade only: neighbouring hits a face needs (higher: fewer, surer faces)")
    min_face_size: int = param(48, min=8, help="faces whose box is shorter than this on a side are dropped (px in the source)")
    score_threshold: float = param(0.5, min=0.0, max=1.0, help="minimum detector likelihood (animeface; the cascade scores 1.0)")
    margin: float = param(0.25, min=0.0, max=2.0, help="crop margin around the box on each side, as a share of its longer side")
    size: int = param(128, choices=(32, 64, 128, 256), help="side of the saved square crops in px")
    border: str = param("shift", choices=("skip", "pad", "shift"), help="a crop past the image edge: skip it, pad it (edge pixels repeated), or shift it inside")
    max_faces: int = param(8, min=1, help="at most this many faces per image (highest scores first)")
    detect_max_side: int = param(0, min=0, help="detect on a copy shrunk to this longer side (speed on big images; crops stay full size); 0: full size")
    max_pixels: int = param(40_000_000, min=1, help="images with more pixels are rejected before decoding")
    workers: int = param(0, min=0, help="worker processes; 0 means all cores")
    seed: int = param(0, min=0, help="seed for the contact sheet's random choice of crops")
    sheet_faces: int = param(64, min=0, help="crops on the contact sheet (0: an empty sheet)")
    align: bool = param(False, help="rotate and scale each face so its eyes sit level at fixed places in the crop")
    max_upscale: float = param(2.0, min=0.0, help="drop a face whose crop would be blown up more than this factor (0: never)")
    min_sharpness: float = param(0.5, min=0.0, help="drop a face with less fine detail than this (blurred; 0: off)")
    drop_monochrome: bool = param(True, help="drop faces of monochrome, greyscale, sketch or lineart art (tags, else faces.min_chroma)")
    min_chroma: float = param(0.1, min=0.0, max=1.0, help="untagged faces with less colour than this count as monochrome")
    max_cut_off: float = param(0.1, min=0.0, max=1.0, help="drop a face when more of its crop than this lies beyond the image edge (1: never)")
    shard_size: int = param(5000, min=1, help="face crops per tar shard under <paths.faces>/shards (docs/faces.md)")
