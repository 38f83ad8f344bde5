"""Drawing one anime face with OpenCV, in the proportions animeface is known to detect.

What makes animeface see a drawing (measured): a hair mass with bangs, a skin face with a pointed
chin and a dark outline, two large eyes with a coloured iris, dark pupil, white highlight and a
thick dark upper lash line. What makes the lbpcascade cascade, trained on real illustrations, see
one too (measured on portraits, by one change at a time): line art's dark outline, about a tenth
of the face radius wide, around every part's silhouette (the hair, the face, the fringe); a narrow
face with a pointed jaw and eyes set wide. Drawn flat, without outlines, it found one face in five
at most sizes, and none from a radius of 45 px up. Those stay; around them each face draws its own `FaceStyle`: hair
style and length, bangs, face shape, skin tone, eye size and place, clothes, an accessory and a
head tilt. Different drawings must differ at the scale a perceptual hash sees (a 32x32 gray
thumbnail of the face crop), not only in colour, or dedupe cannot tell them from copies.

All lengths are in units of the face radius `r`, in the face's own frame: u to the right, v down,
(0, 0) at the drawing centre, rotated with the head.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from anigan.colors import EYE_COLORS, HAIR_COLORS

# The project's colour words and colours (RGB), as OpenCV's BGR for painting.
HAIR_BGR = {word: rgb[::-1] for word, rgb in HAIR_COLORS.items()}
EYE_BGR = {word: rgb[::-1] for word, rgb in EYE_COLORS.items()}
# Skin tones (BGR), pale to dark; all of low saturation, so an eye box's skin is not read as iris.
SKIN_TONES = ((225, 235, 255), (210, 228, 255), (190, 212, 245), (165, 190, 225), (140, 165, 200))
SKIN_BGR = SKIN_TONES[1]

HAIR_STYLES = ("long", "bob", "short", "twin_tails", "ponytail", "hime")
BANGS = ("straight", "parted", "swept", "short", "split", "blunt", "none")
COLLARS = ("v", "sailor", "high", "bare")
ACCESSORIES = ("none", "hairband", "ribbon", "hat", "clips")
CLOTHES_BGR = ((30, 30, 30), (70, 50, 40), (200, 200, 200), (250, 250, 250), (60, 60, 170), (150, 90, 40), (90, 140, 90), (40, 120, 200), (160, 100, 160))


@dataclass(frozen=True)
class FaceStyle:
    """Everything about a drawn face besides its colour words; the defaults are the plain template."""

    hair_style: str = "long"
    bangs: str = "straight"
    locks: int = 5
    lock_depths: tuple[float, ...] = (0.03, 0.03, 0.03, 0.03, 0.03)  # how far each lock's tip reaches down
    hair_shade: float = 1.0  # multiplies the hair colour
    back_shade: float = 1.0  # the hair behind the head, relative to the front: anime often shades it darker
    hair_width: float = 1.25  # half-width of the hair mass
    streaks: tuple[tuple[float, float], ...] = ()  # (u, shade) of strands shaded into the back hair
    shine: float | None = None  # height of the light band across the top of the hair
    face_width: float = 0.95  # half-width of the face
    chin: float = 1.1  # how far below the centre the chin point lies
    jaw: float = 0.72  # half-width of the jaw above the chin, relative to the face
    skin: tuple[int, int, int] = SKIN_BGR
    eye_spacing: float = 0.42
    eye_height: float = 0.2
    eye_scale: float = 1.0
    open_mouth: bool = False
    clothes: tuple[int, int, int] | None = None  # None: no shoulders drawn
    collar: str = "v"
    shoulders: float = 1.3  # where the clothes begin below the chin
    accessory: str = "none"
    accessory_bgr: tuple[int, int, int] = (60, 60, 200)
    tilt: float = 0.0  # degrees, clockwise in the image
    turn: float = 0.0  # the face turned sideways: features move this far right (negative: left)
    frame_locks: float = 0.0  # width of the locks hanging in front of the cheeks (0: none)
    frame_length: float = 0.6  # how far down they reach
    line_width: float = 0.11  # the outline's stroke, half of it outside the silhouette: line weight differs between artists

    def __post_init__(self) -> None:
        if len(self.lock_depths) != self.locks:
            raise ValueError(f"FaceStyle: {self.locks} locks need {self.locks} lock_depths, got {len(self.lock_depths)}")

    @classmethod
    def random(cls, rng: np.random.Generator) -> FaceStyle:
        """A style drawn from `rng`: every choice is independent, so two faces rarely share many."""
        locks = int(rng.integers(3, 8))
        return cls(
            hair_style=str(rng.choice(HAIR_STYLES)),
            bangs=str(rng.choice(BANGS)),
            locks=locks,
            lock_depths=tuple(float(v) for v in rng.uniform(0.0, 0.2, locks)),
            hair_shade=float(rng.uniform(0.6, 1.1)),
            back_shade=float(rng.uniform(0.55, 1.0)),
            hair_width=float(rng.uniform(1.05, 1.4)),
            streaks=_streaks(rng),
            shine=float(rng.uniform(-0.85, -0.55)) if rng.random() < 0.5 else None,
            face_width=float(rng.uniform(0.84, 0.95)),
            chin=float(rng.uniform(1.08, 1.22)),
            jaw=float(rng.uniform(0.5, 0.78)),
            skin=SKIN_TONES[int(rng.integers(len(SKIN_TONES)))],
            eye_spacing=float(rng.uniform(0.4, 0.5)),
            eye_height=float(rng.uniform(0.08, 0.32)),
            eye_scale=float(rng.uniform(0.9, 1.15)),
            open_mouth=bool(rng.random() < 0.3),
            clothes=CLOTHES_BGR[int(rng.integers(len(CLOTHES_BGR)))],
            collar=str(rng.choice(COLLARS)),
            shoulders=float(rng.uniform(1.15, 1.45)),
            accessory=str(rng.choice(ACCESSORIES, p=[0.4, 0.15, 0.15, 0.15, 0.15])),
            accessory_bgr=tuple(int(c) for c in rng.integers(20, 256, 3)),
            tilt=float(rng.uniform(-20.0, 20.0)),
            turn=float(rng.uniform(-0.28, 0.28)),
            frame_locks=float(rng.choice([0.0, rng.uniform(0.1, 0.3)])),
            frame_length=float(rng.uniform(0.3, 1.0)),
            line_width=float(rng.uniform(0.08, 0.15)),
        )


def _streaks(rng: np.random.Generator) -> tuple[tuple[float, float], ...]:
    count = int(rng.integers(0, 7))
    return tuple((float(u), float(shade)) for u, shade in zip(rng.uniform(-1.3, 1.3, count), rng.choice([0.6, 1.35], count)))


def face_box(cx: float, cy: float, r: float, style: FaceStyle | None = None) -> tuple[int, int, int, int]:
    """The ground-truth box [x, y, w, h] of a face drawn at (cx, cy, r), in animeface's convention.

    animeface's box is square, from the bangs to below the chin, and it follows the eyes: its side
    grows with the span of the eyes and their height above the chin, its centre moves with a turned
    face and turns with a tilted head. The coefficients are a least-squares fit on 556 detections
    of single drawn faces (residual spread: 0.22 r in side, 0.08 r in centre), made before the
    drawings had outlines; on the outlined ones animeface's boxes still overlap it by IoU 0.78 at
    the median (0.82 before), and 99% by 0.5 or more, so it was not refitted.
    """
    s = style or FaceStyle()
    span = 2 * s.eye_spacing + 0.34 * s.eye_scale  # from the outer corner of one eye to the other's
    drop = s.chin - s.eye_height  # from the eyes to the chin
    side = span + 0.72 * drop - 0.3
    bx, by = _rotate(s.turn, 0.38 + 0.46 * s.eye_height + 0.29 * s.chin - 0.33 * span, s.tilt)
    return (round(cx + (bx - side / 2) * r), round(cy + (by - side / 2) * r), round(side * r), round(side * r))


EXTENT = (1.75, 1.7, 1.75, 1.85)  # face_extent's reach left, up, right and down, in face radii


def face_extent(cx: float, cy: float, r: float) -> tuple[float, float, float, float]:
    """The face drawing's hair, hat and shoulders, as x0, y0, x1, y1: used to keep faces apart and inside the image.

    It also holds the square a face crop with a quarter of the box as margin covers (down to 1.85 r
    below the centre), so crops of planted copies are not moved by the image edge.
    """
    left, up, right, down = EXTENT
    return (cx - left * r, cy - up * r, cx + right * r, cy + down * r)


def _rotate(u: float, v: float, tilt: float) -> tuple[float, float]:
    a = math.radians(tilt)
    return u * math.cos(a) - v * math.sin(a), u * math.sin(a) + v * math.cos(a)


SHIFT = 4  # sub-pixel bits for OpenCV's drawing calls: small faces keep their shape


class _Pen:
    """Draws in face units (u, v) on the image, turned by the head's tilt.

    A pen made by `outlining` strokes the outline of each filled shape instead of filling it: a
    group of shapes stroked, then filled, keeps a dark line only around the group's silhouette.
    """

    def __init__(self, img: np.ndarray, cx: float, cy: float, r: float, tilt: float, stroke: tuple[tuple[int, ...], int] | None = None) -> None:
        self.img, self.cx, self.cy, self.r, self.tilt, self.stroke = img, cx, cy, r, tilt, stroke

    def outlining(self, colour, thickness: int) -> _Pen:
        return _Pen(self.img, self.cx, self.cy, self.r, self.tilt, (colour, thickness))

    def moved(self, u: float, v: float, img: np.ndarray | None = None) -> _Pen:
        """The same pen, its origin moved by (u, v) face units (and drawing on `img` if given)."""
        du, dv = _rotate(u, v, self.tilt)
        return _Pen(self.img if img is None else img, self.cx + du * self.r, self.cy + dv * self.r, self.r, self.tilt, self.stroke)

    def _fixed(self, u: float, v: float) -> tuple[int, int]:
        du, dv = _rotate(u, v, self.tilt)
        return round((self.cx + du * self.r) * (1 << SHIFT)), round((self.cy + dv * self.r) * (1 << SHIFT))

    def width(self, w: float, least: int = 1) -> int:
        return max(least, round(w * self.r))

    def ellipse(self, u, v, au, av, colour, *, start=0, end=360, angle=0.0, thickness=-1) -> None:
        if thickness < 0 and self.stroke is not None:
            colour, thickness = self.stroke
        axes = (round(au * self.r * (1 << SHIFT)), round(av * self.r * (1 << SHIFT)))
        cv2.ellipse(self.img, self._fixed(u, v), axes, angle + self.tilt, start, end, colour, thickness, cv2.LINE_AA, SHIFT)

    def polygon(self, points, colour) -> None:
        pts = np.array([self._fixed(u, v) for u, v in points], np.int32)
        if self.stroke is not None:
            cv2.polylines(self.img, [pts], True, self.stroke[0], self.stroke[1], cv2.LINE_AA, SHIFT)
        else:
            cv2.fillPoly(self.img, [pts], colour, cv2.LINE_AA, SHIFT)

    def polyline(self, points, colour, thickness: int) -> None:
        pts = np.array([self._fixed(u, v) for u, v in points], np.int32)
        cv2.polylines(self.img, [pts], False, colour, thickness, cv2.LINE_AA, SHIFT)


def _shade(bgr: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    return tuple(int(min(255, round(c * factor))) for c in bgr)  # type: ignore[return-value]


def _back_hair(pen: _Pen, s: FaceStyle, hair) -> None:
    """The hair mass behind the head; its outline is what differs most between styles."""
    w = s.hair_width
    if s.hair_style == "short":
        pen.ellipse(0, -0.3, w, 1.05, hair)
    else:
        pen.ellipse(0, -0.15, w, 1.3, hair)
    if s.hair_style in ("long", "hime"):
        pen.polygon([(-w, -0.1), (w, -0.1), (w + 0.15, 1.7), (-w - 0.15, 1.7)], hair)
    elif s.hair_style == "bob":
        pen.polygon([(-w, -0.1), (w, -0.1), (w, 0.55), (-w, 0.55)], hair)
        pen.ellipse(0, 0.55, w, 0.35, hair, start=0, end=180)
    elif s.hair_style == "twin_tails":
        for side in (-1, 1):
            pen.ellipse(side * (w + 0.05), 0.45, 0.3, 1.05, hair, angle=side * -10)
            pen.ellipse(side * (w - 0.05), -0.75, 0.16, 0.12, s.accessory_bgr)  # the tie
    elif s.hair_style == "ponytail":
        pen.ellipse(0.9 * w, 0.5, 0.32, 1.0, hair, angle=-18)
    # "short": the round mass alone, ending near the ears
    for u, shade in s.streaks:
        lean = 0.25 if u > 0 else -0.25
        pen.polygon([(u - 0.05, -1.2), (u + 0.05, -1.2), (u + lean + 0.07, 1.5), (u + lean - 0.07, 1.5)], _shade(hair, shade))


def _shoulders(pen: _Pen, s: FaceStyle) -> None:
    if s.clothes is None:
        return
    top, neck = s.shoulders, _shade(s.skin, 0.93)
    pen.polygon([(-0.28, 0.7), (0.28, 0.7), (0.3, top + 0.2), (-0.3, top + 0.2)], neck)
    body = [(-0.55, top), (0.55, top), (1.6, top + 0.35), (1.6, 2.2), (-1.6, 2.2), (-1.6, top + 0.35)]
    if s.collar == "bare":  # off the shoulder: skin, with the clothes lower down
        pen.polygon(body, neck)
        pen.polygon([(-1.6, top + 0.45), (1.6, top + 0.45), (1.6, 2.2), (-1.6, 2.2)], s.clothes)
        return
    pen.polygon(body, s.clothes)
    if s.collar == "v":
        pen.polygon([(-0.3, top), (0.3, top), (0.0, top + 0.32)], neck)
    elif s.collar == "sailor":
        white = (245, 245, 245) if sum(s.clothes) < 450 else (110, 60, 30)
        for side in (-1, 1):
            pen.polygon([(side * 0.05, top + 0.45), (side * 0.5, top), (side * 1.3, top + 0.3), (side * 0.9, top + 0.6)], white)
        pen.polygon([(-0.15, top + 0.35), (0.15, top + 0.35), (0.0, top + 0.6)], (60, 40, 200))  # the scarf knot
    elif s.collar == "high":
        pen.polygon([(-0.36, 0.85), (0.36, 0.85), (0.42, top + 0.1), (-0.42, top + 0.1)], s.clothes)


def _face_jaw(s: FaceStyle) -> list[tuple[float, float]]:
    """The cheeks and jaw narrowing to a pointed chin; a turned face moves its chin further than its oval."""
    fw, t = s.face_width, s.turn
    o = 0.35 * t
    return [
        (o - fw, 0.0),
        (o - fw * 0.96, 0.38),
        (o - fw * s.jaw + 0.5 * t, 0.72),
        (t, s.chin),
        (o + fw * s.jaw + 0.5 * t, 0.72),
        (o + fw * 0.96, 0.38),
        (o + fw, 0.0),
    ]


def _face(pen: _Pen, s: FaceStyle, colour) -> None:
    """Skin: a round forehead and the jaw, filled (or stroked, with an outlining pen)."""
    pen.ellipse(0.35 * s.turn, 0, s.face_width, 0.9, colour, start=180, end=360)
    pen.polygon(_face_jaw(s), colour)


def _side_locks(pen: _Pen, s: FaceStyle, hair) -> None:
    """Hair falling beside and in front of the face."""
    if s.hair_style == "hime":
        for side in (-1, 1):
            pen.polygon([(side * 0.78, -0.3), (side * 1.02, -0.3), (side * 1.0, 0.75), (side * 0.8, 0.75)], hair)
    elif s.hair_style == "long":
        for side in (-1, 1):
            pen.polygon([(side * 0.85, -0.2), (side * 1.05, -0.3), (side * (s.hair_width + 0.1), 1.6), (side * 0.95, 1.5)], hair)
    if s.frame_locks > 0:
        inner = 0.98 - s.frame_locks
        for side in (-1, 1):
            pen.polygon([(side * inner, -0.45), (side * 1.0, -0.45), (side * 1.0, s.frame_length), (side * (inner + 0.08), s.frame_length + 0.1)], hair)


def _bangs(pen: _Pen, s: FaceStyle, hair) -> None:
    """The top of the head with locks over the forehead, in one of several cuts."""
    if s.bangs == "none":  # hair combed back: a bare forehead below the hairline
        pen.ellipse(0, -0.6, 1.03, 0.55, hair, start=180, end=360)
        return
    pen.ellipse(0, -0.35, 1.05, 0.75, hair, start=180, end=360)
    if s.bangs == "blunt":  # cut straight across
        edge = -0.3 + s.lock_depths[0]
        pen.polygon([(-0.98, -0.4), (0.98, -0.4), (0.96, edge), (-0.96, edge)], hair)
        return
    n = s.locks
    low = {"straight": -0.4, "short": -0.55, "parted": -0.4, "swept": -0.4, "split": -0.4}[s.bangs]
    for i in range(n):
        u0 = -1.0 + i * 2.0 / n
        u1 = u0 + 2.0 / n
        depth = s.lock_depths[i]
        tip_v = low + 0.3 + depth if s.bangs != "short" else low + 0.15 + depth / 2
        tip_u = (u0 + u1) / 2
        if s.bangs == "swept":
            tip_u += 1.2 / n
        if s.bangs == "parted" and abs(tip_u) < 0.35:
            continue  # the parting shows the forehead
        pen.polygon([(u0, low), (u1, low), (tip_u, tip_v)], hair)
    if s.bangs == "split":
        # two heavy curtains with a gap in the middle
        for side in (-1, 1):
            pen.polygon([(side * 0.1, -0.6), (side * 1.0, -0.45), (side * 0.95, 0.05), (side * 0.55, -0.05)], hair)


def _eyes(pen: _Pen, s: FaceStyle, iris) -> None:
    """Tall eyes as anime draws them: a heavy upper lash line with a flick at the outer corner, an
    iris filling the opening, a dark pupil, two highlights, a short lower lash.
    """
    dark = (20, 15, 15)
    for side in (-1, 1):
        # on a turned face the far eye is seen narrower
        ax, ay = 0.19 * s.eye_scale * (1 - 1.5 * max(0.0, side * s.turn)), 0.25 * s.eye_scale
        ex, ey = side * s.eye_spacing * (1 - 0.5 * abs(s.turn)) + s.turn, s.eye_height
        pen.ellipse(ex, ey, ax, ay, (255, 255, 255))
        pen.ellipse(ex, ey + 0.02, ax * 0.82, ay * 0.95, iris)
        pen.ellipse(ex, ey + 0.04, ax * 0.4, ay * 0.5, (30, 20, 20))
        pen.ellipse(ex - ax * 0.35, ey - ay * 0.3, 0.06, 0.06, (255, 255, 255))
        pen.ellipse(ex + ax * 0.3, ey + ay * 0.35, 0.03, 0.03, (255, 255, 255))
        pen.ellipse(ex, ey + 0.02, ax * 1.15, ay * 1.05, dark, start=195, end=345, thickness=pen.width(0.09, least=2))
        pen.polyline([(ex + side * ax * 1.0, ey - ay * 0.5), (ex + side * ax * 1.45, ey - ay * 0.75)], dark, pen.width(0.06, least=1))
        pen.ellipse(ex, ey, ax * 0.9, ay * 1.0, dark, start=20 if side > 0 else 110, end=70 if side > 0 else 160, thickness=pen.width(0.025))


def _mouth(pen: _Pen, s: FaceStyle) -> None:
    u, v = 0.8 * s.turn, 0.68 + (s.chin - 1.1) * 0.5
    if s.open_mouth:
        pen.ellipse(u, v, 0.08, 0.06, (70, 70, 180))
    else:
        pen.ellipse(u, v, 0.12, 0.05, (60, 60, 160), start=0, end=180, thickness=pen.width(0.03))


def _accessory(pen: _Pen, s: FaceStyle) -> None:
    a, colour = s.accessory, s.accessory_bgr
    if a == "hairband":
        pen.ellipse(0, -0.35, 1.0, 0.72, colour, start=200, end=340, thickness=pen.width(0.12, least=2))
    elif a == "ribbon":
        for side in (-1, 1):
            pen.polygon([(0.55, -1.05), (0.55 + side * 0.45, -1.3), (0.55 + side * 0.45, -0.8)], colour)
        pen.ellipse(0.55, -1.05, 0.1, 0.1, _shade(colour, 0.7))
    elif a == "hat":
        pen.ellipse(0, -0.95, 1.45, 0.22, colour)  # brim
        pen.ellipse(0, -1.05, 0.95, 0.55, colour, start=180, end=360)
    elif a == "clips":
        for k in range(2):
            pen.polygon([(0.6 + 0.12 * k, -0.75), (0.68 + 0.12 * k, -0.75), (0.6 + 0.12 * k, -0.4), (0.52 + 0.12 * k, -0.4)], colour)


def _shadow_under_bangs(pen: _Pen, s: FaceStyle, shadow) -> None:
    """Cel shading: the fringe's shadow on the forehead, the fringe's shape moved down, kept inside the face.

    Worked on the square around the face only (the face lies within 1.5 radii of its centre at any
    tilt), so a big image costs no more than a small one.
    """
    reach = 1.5 * pen.r
    x0, y0 = max(0, int(pen.cx - reach)), max(0, int(pen.cy - reach))
    region = pen.img[y0 : int(pen.cy + reach) + 1, x0 : int(pen.cx + reach) + 1]
    local = _Pen(region, pen.cx - x0, pen.cy - y0, pen.r, pen.tilt)
    mask = np.zeros(region.shape[:2], np.uint8)
    _face(local.moved(0, 0, mask), s, 255)
    layer = region.copy()
    low = local.moved(0, 0.1, layer)
    _side_locks(low, s, shadow)
    _bangs(low, s, shadow)
    inside = mask > 0
    region[inside] = layer[inside]


def draw_face(img: np.ndarray, cx: float, cy: float, r: float, hair: str, eyes: str, style: FaceStyle | None = None) -> None:
    """Paint one face in place on a BGR uint8 image, in `style` (the plain template by default).

    Each part (back hair, face, fringe and locks) is outlined around its silhouette in a dark
    shade of the hair, as line art is.
    """
    s = style or FaceStyle()
    pen = _Pen(img, cx, cy, r, s.tilt)
    hair_bgr = _shade(HAIR_BGR[hair], s.hair_shade)
    line = tuple(int(c * 0.35) for c in hair_bgr)
    outline = pen.outlining(line, pen.width(s.line_width, least=2))
    back = _shade(hair_bgr, s.back_shade)
    _back_hair(outline, s, back)
    _back_hair(pen, s, back)
    _shoulders(pen, s)
    _face(outline, s, s.skin)
    _face(pen, s, s.skin)
    _shadow_under_bangs(pen, s, _shade(s.skin, 0.82))
    for p in (outline, pen):
        _side_locks(p, s, hair_bgr)
        _bangs(p, s, hair_bgr)
    if s.shine is not None:
        pen.ellipse(0, s.shine + 0.45, 0.9, 0.55, _shade(hair_bgr, 1.4), start=215, end=325, thickness=pen.width(0.07))
    _eyes(pen, s, EYE_BGR[eyes])
    _mouth(pen, s)
    _accessory(pen, s)
