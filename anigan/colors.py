"""The hair and eye colour words (Danbooru's tag spelling) and one RGB colour for each.

One table for the whole project: the demo booru paints its faces with these colours, and the
faces stage names a colour seen in the pixels by the nearest of them. Both are typical flat
anime fills for the tag word.
"""

HAIR_COLORS: dict[str, tuple[int, int, int]] = {
    "black": (35, 32, 40),
    "blonde": (242, 214, 120),
    "blue": (60, 100, 205),
    "brown": (120, 72, 42),
    "green": (70, 160, 80),
    "pink": (244, 160, 190),
    "purple": (135, 80, 180),
    "red": (200, 40, 45),
    "silver": (200, 202, 212),
    "orange": (240, 135, 45),
}
EYE_COLORS: dict[str, tuple[int, int, int]] = {
    "blue": (50, 95, 215),
    "brown": (115, 68, 40),
    "green": (50, 155, 70),
    "purple": (140, 70, 190),
    "red": (205, 35, 45),
    "yellow": (235, 205, 50),
    "aqua": (60, 205, 210),
    "pink": (240, 130, 180),
}
