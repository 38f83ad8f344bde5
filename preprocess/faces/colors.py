"""Hair and eye colour words for a face: from booru tags when they can be trusted, else from pixels.

The vocabulary is the booru's (`blue_hair`, `aqua_eyes`...). A detector's colour estimate (an RGB
triple) is named by the nearest reference colour in CIELAB, where distances track what a person
sees far better than in RGB (dark blue and black are close in RGB, not to the eye).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from anigan.colors import EYE_COLORS, HAIR_COLORS

# Booru tags that mean one of our words (Danbooru spells shades separately).
_HAIR_SYNONYMS = {"white": "silver", "grey": "silver", "gray": "silver", "light_brown": "brown", "light_blue": "blue", "dark_blue": "blue", "light_purple": "purple", "dark_green": "green"}
_EYE_SYNONYMS = {"light_blue": "blue", "dark_blue": "blue", "orange": "yellow", "light_brown": "brown"}


def _srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (..., 3) in 0..255 -> CIELAB (D65)."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]])
    xyz = linear @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


def nearest_color(rgb: Sequence[float], palette: dict[str, tuple[int, int, int]]) -> str:
    """The palette word whose reference colour is nearest to `rgb` in CIELAB."""
    names = list(palette)
    refs = _srgb_to_lab(np.array([palette[n] for n in names]))
    distances = np.linalg.norm(refs - _srgb_to_lab(np.array(rgb, dtype=np.float64)), axis=-1)
    return names[int(np.argmin(distances))]


def iris_color(eye: np.ndarray) -> tuple[int, int, int] | None:
    """The colour of an iris from the RGB pixels of an eye box, or None for an empty box.

    An eye box holds the iris, a dark pupil, lash lines, white highlights and some skin. The iris
    is what is both coloured and not too dark: the median of the pixels with HSV saturation
    >= 0.3 and value >= 0.2. Eyes with no such pixels (black or grey eyes) give the median of
    the pixels that are not near-white instead.
    """
    pixels = np.asarray(eye, dtype=np.float64).reshape(-1, 3)
    if pixels.size == 0:
        return None
    high, low = pixels.max(axis=1), pixels.min(axis=1)
    saturation = np.where(high > 0, (high - low) / np.maximum(high, 1), 0)
    iris = pixels[(saturation >= 0.3) & (high >= 0.2 * 255)]
    if len(iris) < max(4, len(pixels) // 50):
        iris = pixels[low < 0.85 * 255]
        if len(iris) == 0:
            iris = pixels
    return tuple(int(round(v)) for v in np.median(iris, axis=0))  # type: ignore[return-value]


def hair_color(region: np.ndarray, skin: np.ndarray) -> tuple[int, int, int] | None:
    """The colour of the hair from the RGB pixels above the eyes, or None for an empty region.

    Above the eyes lie the bangs and the top of the head, and some forehead. Pixels close to
    `skin` (the median of the cheeks) are set aside; of the rest, the commonest colour (counted
    in coarse bins, since hair is drawn in large fills with some shading) gives the median of its
    bin. With almost no pixels left (hair the colour of skin), all of them count.
    """
    pixels = np.asarray(region, dtype=np.int64).reshape(-1, 3)
    if pixels.size == 0:
        return None
    if np.asarray(skin).size == 3:
        away = pixels[np.abs(pixels - np.asarray(skin, dtype=np.int64)).sum(axis=1) > 60]
        pixels = away if len(away) >= 10 else pixels
    _, bins, counts = np.unique(pixels // 24, axis=0, return_inverse=True, return_counts=True)
    commonest = pixels[bins.ravel() == np.argmax(counts)]
    return tuple(int(round(v)) for v in np.median(commonest, axis=0))  # type: ignore[return-value]


def _tagged(tags: Iterable[str], suffix: str, vocabulary: dict, synonyms: dict[str, str]) -> str | None:
    found = set()
    for tag in tags:
        if tag.endswith(suffix):
            word = tag[: -len(suffix)]
            word = synonyms.get(word, word)
            if word in vocabulary:
                found.add(word)
    # two colours (multicolored hair, heterochromia, or two characters): the tags cannot say which
    return found.pop() if len(found) == 1 else None


def hair_from_tags(tags: Iterable[str]) -> str | None:
    """The one hair colour the tags name (`blue_hair` -> "blue"), or None if none or several."""
    return _tagged(tags, "_hair", HAIR_COLORS, _HAIR_SYNONYMS)


def eyes_from_tags(tags: Iterable[str]) -> str | None:
    """The one eye colour the tags name (`aqua_eyes` -> "aqua"), or None if none or several."""
    return _tagged(tags, "_eyes", EYE_COLORS, _EYE_SYNONYMS)


def describe_face(
    tags: Sequence[str],
    faces_in_image: int,
    hair_rgb: Sequence[float] | None,
    eye_rgb: Sequence[float] | None,
) -> tuple[str | None, str | None, str | None]:
    """(hair_color, eye_color, colors_from) for one face.

    Tags describe the whole post, so they are used only when the image has exactly one face;
    otherwise (or when the tags are silent) the detector's estimate is named. `colors_from` is
    "tags", "detector", "tags+detector" (one of each) or None when nothing was known.
    """
    hair = eyes = None
    sources = []
    if faces_in_image == 1:
        hair, eyes = hair_from_tags(tags), eyes_from_tags(tags)
        if hair or eyes:
            sources.append("tags")
    estimated = False
    if hair is None and hair_rgb is not None:
        hair, estimated = nearest_color(hair_rgb, HAIR_COLORS), True
    if eyes is None and eye_rgb is not None:
        eyes, estimated = nearest_color(eye_rgb, EYE_COLORS), True
    if estimated:
        sources.append("detector")
    return hair, eyes, "+".join(sources) or None
