"""How the synthetic world's pictures look, and what a visual system measures in them.

``render`` draws one shape from its attribute values with PIL (no torchvision):
a polygon or ellipse mask, filled with a texture in the shape's colour, on a
plain or gradient background, drawn at twice the size and downsampled for
smooth edges. ``image_features`` turns the same attribute values into the
low-level properties an early visual system is sensitive to (luminance
contrast, mean luminance, size, position in the visual field, hue, edge
density, outline complexity), which drive the simulated brain in ``brain.py``.
"""

from __future__ import annotations

import colorsys
import functools
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

RGB = {
    "red": (220, 30, 30), "orange": (245, 130, 20), "yellow": (240, 220, 30), "lime": (150, 230, 40),
    "green": (20, 140, 50), "teal": (0, 128, 128), "cyan": (40, 210, 230), "blue": (30, 60, 220),
    "purple": (120, 40, 170), "magenta": (220, 40, 200), "pink": (250, 150, 190), "brown": (130, 80, 30),
}
BACKGROUND_RGB = {"light": (235, 235, 230), "dark": (25, 25, 30), "grey": (128, 128, 128)}
SIZE_FRACTION = {"small": 0.28, "medium": 0.42, "large": 0.6}  # shape diameter / image width
SIZE_LEVEL = {"small": 0.0, "medium": 0.5, "large": 1.0}

# Horizontal and vertical offset of the shape's centre, in units of the free margin.
POSITION_XY = {
    "left": (-1, 0), "centre": (0, 0), "right": (1, 0),
    "upper left": (-1, -1), "upper right": (1, -1), "lower left": (-1, 1), "lower right": (1, 1),
}



def _polygon(n_points: int, radius: float, inner: float = 1.0, rotation: float = -math.pi / 2):
    """Vertices of a regular polygon (``inner`` < 1 alternates radii: a star) around (0, 0)."""
    steps = n_points * (2 if inner != 1.0 else 1)
    return [((radius if k % 2 == 0 or inner == 1.0 else radius * inner) * math.cos(rotation + 2 * math.pi * k / steps),
             (radius if k % 2 == 0 or inner == 1.0 else radius * inner) * math.sin(rotation + 2 * math.pi * k / steps))
            for k in range(steps)]


def _shape_outline(shape: str, r: float):
    """The shape as polygon vertices around (0, 0) with radius ``r`` (None: drawn as ellipses)."""
    if shape == "square":
        return [(-r * 0.85, -r * 0.85), (r * 0.85, -r * 0.85), (r * 0.85, r * 0.85), (-r * 0.85, r * 0.85)]
    if shape == "triangle":
        return _polygon(3, r, rotation=-math.pi / 2)
    if shape == "diamond":
        return [(0, -r), (r * 0.7, 0), (0, r), (-r * 0.7, 0)]
    if shape == "star":
        return _polygon(5, r, inner=0.45)
    if shape == "cross":
        a = r * 0.33
        return [(-a, -r), (a, -r), (a, -a), (r, -a), (r, a), (a, a), (a, r), (-a, r), (-a, a), (-r, a), (-r, -a), (-a, -a)]
    if shape == "hexagon":
        return _polygon(6, r, rotation=0.0)
    if shape == "pentagon":
        return _polygon(5, r)
    if shape == "arrow":
        return [(-r, -r * 0.3), (0, -r * 0.3), (0, -r * 0.8), (r, 0), (0, r * 0.8), (0, r * 0.3), (-r, r * 0.3)]
    if shape == "heart":  # the classic parametric heart curve, scaled to radius r
        ts = np.linspace(0, 2 * math.pi, 60, endpoint=False)
        x, y = 16 * np.sin(ts) ** 3, -(13 * np.cos(ts) - 5 * np.cos(2 * ts) - 2 * np.cos(3 * ts) - np.cos(4 * ts))
        return list(zip(x * r / 17, (y + 2.5) * r / 17))
    return None


def _shape_mask(shape: str, size: int, cx: float, cy: float, r: float) -> Image.Image:
    """A grey-level mask (255 inside the shape) of a ``size`` x ``size`` image."""
    mask = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(mask)
    outline = _shape_outline(shape, r)
    if outline is not None:
        draw.polygon([(cx + x, cy + y) for x, y in outline], fill=255)
    elif shape == "ellipse":
        draw.ellipse([cx - r, cy - r * 0.6, cx + r, cy + r * 0.6], fill=255)
    else:  # circle, crescent
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
        if shape == "crescent":
            draw.ellipse([cx - r * 0.45, cy - r * 1.05, cx + r * 1.35, cy + r * 0.85], fill=0)
    return mask


@functools.lru_cache(maxsize=64)
def _texture_mask(texture: str, size: int, period: int) -> np.ndarray:
    """Boolean (size, size): True where the texture shows the shape's own colour (cached: read-only)."""
    y, x = np.mgrid[0:size, 0:size]
    if texture == "striped":
        return (x + y) // period % 2 == 0
    if texture == "dotted":
        return (x % period - period / 2) ** 2 + (y % period - period / 2) ** 2 > (period / 3) ** 2
    if texture == "checked":
        return (x // period + y // period) % 2 == 0
    if texture == "wavy":
        return ((y + period / 2 * np.sin(2 * np.pi * x / (2 * period))) // period) % 2 == 0
    return np.ones((size, size), dtype=bool)


@functools.lru_cache(maxsize=16)
def _background(background: str, size: int) -> np.ndarray:
    """The empty (size, size, 3) canvas, uint8 (cached: copy before drawing on it)."""
    if background == "gradient":  # light at the top to dark at the bottom
        column = np.linspace(230, 40, size)[:, None, None]
        return np.broadcast_to(column, (size, size, 3)).astype(np.uint8)
    return np.broadcast_to(np.array(BACKGROUND_RGB[background], np.uint8), (size, size, 3)).copy()


def render(attributes: dict, size: int = 128) -> Image.Image:
    """Draw the image an attribute dict describes (RGB, ``size`` x ``size``).

    Deterministic: the same attributes always give the same pixels. Drawn at
    twice the size and downsampled, for smooth edges.
    """
    big = 2 * size
    r = SIZE_FRACTION[attributes["size"]] * big / 2
    dx, dy = POSITION_XY[attributes["position"]]
    margin = big / 2 - r - big * 0.04
    cx, cy = big / 2 + dx * margin, big / 2 + dy * margin
    inside = np.asarray(_shape_mask(attributes["shape"], big, cx, cy, r)) > 127
    colour = np.array(RGB[attributes["colour"]], np.float32)
    canvas = _background(attributes["background"], big).copy()
    if attributes["texture"] == "outlined":
        # A thick contour of the shape, its inside left as background. Erosion by a box blur:
        # a pixel stays fully on only if its whole neighbourhood is inside the shape.
        blurred = Image.fromarray((inside * 255).astype(np.uint8)).filter(ImageFilter.BoxBlur(big // 40))
        canvas[inside & (np.asarray(blurred) < 250)] = colour
    else:
        pattern = _texture_mask(attributes["texture"], big, period=max(4, big // 16))
        # The texture alternates the colour with a paler (or darker) shade of it, never with the background.
        shade = colour * 0.45 + (255.0 if colour.mean() < 128 else 0.0) * 0.55
        canvas[inside] = np.where(pattern[inside][:, None], colour, shade).round().astype(np.uint8)
    return Image.fromarray(canvas, "RGB").reduce(2)  # 2 x 2 box average: anti-aliased edges

# ----------------------------------------------------------------------------- what the brain sees

# How many corners and turns each outline has (N1 grows with it), and how round it is.
SHAPE_COMPLEXITY = {"circle": 0.0, "ellipse": 0.1, "crescent": 0.3, "heart": 0.4, "triangle": 0.3, "square": 0.4,
                    "diamond": 0.4, "pentagon": 0.5, "hexagon": 0.6, "arrow": 0.8, "star": 1.0, "cross": 0.9}
ROUND_SHAPES = {"circle": 1.0, "ellipse": 1.0, "crescent": 0.8, "heart": 0.6}
# Edge density of each texture: more edges drive the late component harder.
TEXTURE_ENERGY = {"solid": 0.0, "outlined": 0.4, "striped": 0.7, "wavy": 0.8, "dotted": 0.6, "checked": 1.0}


def _luminance(rgb) -> float:
    return (0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]) / 255.0  # ITU-R BT.709


def image_features(attributes: list[dict]) -> dict[str, np.ndarray]:
    """The low-level properties of each image that the simulated brain responds to (``brain.component_drive``)."""
    rows = []
    for a in attributes:
        colour = RGB[a["colour"]]
        shape_lum = _luminance(colour)
        background_lum = 0.5 if a["background"] == "gradient" else _luminance(BACKGROUND_RGB[a["background"]])
        area = SIZE_FRACTION[a["size"]] ** 2 * math.pi / 4
        hue, _, saturation = colorsys.rgb_to_hls(*(c / 255.0 for c in colour))
        rows.append({
            "side": POSITION_XY[a["position"]][0], "vertical": POSITION_XY[a["position"]][1],
            "size": SIZE_LEVEL[a["size"]], "contrast": abs(shape_lum - background_lum),
            "luminance": area * shape_lum + (1 - area) * background_lum,
            "complexity": SHAPE_COMPLEXITY[a["shape"]], "roundness": ROUND_SHAPES.get(a["shape"], 0.0),
            "hue_cos": math.cos(2 * math.pi * hue), "hue_sin": math.sin(2 * math.pi * hue),
            "saturation": saturation, "texture": TEXTURE_ENERGY[a["texture"]],
        })
    return {name: np.array([row[name] for row in rows], dtype=np.float64) for name in rows[0]} if rows else {}
