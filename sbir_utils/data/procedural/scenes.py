"""Scenes for the scene-level model: 2-5 objects on a background (sky, room or ground), a scene sketch by
one of the scene drawers (some objects left out or moved) and a caption built from the attributes."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..strokes import CANVAS, join_strokes
from . import render
from .drawers import DrawerStyle, draw_strokes
from .geometry import Part, affine, bounds, ellipse, line, place, rect, shape
from .shapes import build_geometry, colour_roles, describe, instance_attributes

# longest side of an object relative to the image side, at the front of the scene
SCENE_SIZE = {"house": 0.62, "tree": 0.58, "car": 0.48, "chair": 0.4, "lamp": 0.38, "bottle": 0.3, "mug": 0.26,
              "shoe": 0.3}
OUTDOOR_ONLY = ("house", "tree", "car")
SCENE_BACKGROUNDS = ("sky", "room", "ground")
P_OMIT_OBJECT = 0.15  # a scene drawer leaves out each object with this probability (never all)
P_MOVE_OBJECT = 0.3  # ... or draws it noticeably displaced
SCENE_INSTANCES = 1000  # attribute pool per category for scene objects (seeded, separate from the object set)


@dataclass
class SceneObject:
    category: str
    attributes: dict
    parts: list[Part]  # placed in photo pixels (supersampled canvas)
    colours: dict


@dataclass
class Scene:
    background: str
    horizon: float  # fraction of the height
    objects: list[SceneObject] = field(default_factory=list)
    extras: list[Part] = field(default_factory=list)  # sun, wall window: drawn in photo and sketch
    caption: str = ""


def compose_scene(categories: list[str], rng: np.random.Generator, seed: int, canvas: float) -> Scene:
    """Pick a background and 2-5 objects, place them (far ones higher and smaller) on a ``canvas`` square."""
    kind = str(rng.choice(SCENE_BACKGROUNDS))
    allowed = [c for c in categories if kind != "room" or c not in OUTDOOR_ONLY] or list(categories)
    horizon = {"sky": rng.uniform(0.45, 0.62), "room": rng.uniform(0.5, 0.68), "ground": rng.uniform(0.22, 0.36)}[kind]
    scene = Scene(kind, float(horizon))
    n = int(rng.integers(2, 6))
    slots = (np.arange(n) + rng.uniform(0.2, 0.8, n)) / n
    rng.shuffle(slots)
    ground = rng.uniform(horizon + 0.08, 0.97, n)
    order = np.argsort(ground)
    for j in order:
        cat = str(rng.choice(allowed))
        attrs = instance_attributes(cat, int(rng.integers(SCENE_INSTANCES)), SCENE_INSTANCES, seed + 7919)
        depth = (ground[j] - horizon) / (1 - horizon)
        size = SCENE_SIZE[cat] * (0.55 + 0.55 * depth) * canvas * rng.uniform(0.9, 1.1)
        unit = build_geometry(cat, attrs)
        m = affine(rng.uniform(-3, 3), size, flip=bool(rng.random() < 0.5))
        placed = place(unit, m, (0.0, 0.0))
        lo, hi = bounds(placed)
        x = float(np.clip(slots[j] * canvas, (hi[0] - lo[0]) / 2, canvas - (hi[0] - lo[0]) / 2))
        placed = place(placed, np.eye(2), (x - (lo[0] + hi[0]) / 2, ground[j] * canvas - hi[1]))
        scene.objects.append(SceneObject(cat, attrs, placed, colour_roles(cat, attrs, rng)))
    if kind == "sky" and rng.random() < 0.6:
        cx, cy, r = rng.uniform(0.1, 0.9) * canvas, rng.uniform(0.08, 0.25) * canvas * horizon * 2, 0.06 * canvas
        scene.extras.append(shape(ellipse(cx, cy, r, r, 24), "sun", detail=0.6))
    if kind == "room" and rng.random() < 0.6:
        x0, y0 = rng.uniform(0.1, 0.6) * canvas, rng.uniform(0.08, 0.2) * canvas
        w, h = rng.uniform(0.2, 0.3) * canvas, horizon * canvas * 0.45
        scene.extras.append(shape(rect(x0, y0, x0 + w, y0 + h), "window", texture="glass", detail=0.6))
    scene.caption = caption(scene, rng)
    return scene


def caption(scene: Scene, rng: np.random.Generator) -> str:
    """E.g. "a red mug with a square handle next to a tall lamp in a room"."""
    objs = sorted(scene.objects, key=lambda o: bounds(o.parts)[0][0])
    phrases = [describe(o.category, o.attributes, rng) for o in objs]
    links = ("next to", "beside", "and", "to the left of")
    text = phrases[0]
    for p in phrases[1:]:
        text += f" {links[int(rng.integers(len(links)))]} {p}"
    where = {"sky": ("under a blue sky", "on the grass", "outside"), "room": ("in a room", "indoors", "on the floor"),
             "ground": ("on the ground", "in a field", "on a sandy ground")}[scene.background]
    return f"{text} {where[int(rng.integers(len(where)))]}"


def _background(scene: Scene, size: int, rng: np.random.Generator) -> np.ndarray:
    h = int(scene.horizon * size)
    img = np.empty((size, size, 3), dtype=np.float32)
    yy = np.linspace(0, 1, max(h, 1))[:, None, None]
    if scene.background == "room":
        wall = rng.uniform(0.7, 0.95, 3)
        img[:h] = wall * (0.92 + 0.08 * yy)
        floor = rng.uniform(0.4, 0.7, 3) * np.array([1.0, 0.85, 0.7])
    else:
        top, low = np.array([0.35, 0.55, 0.9]) * rng.uniform(0.85, 1.1), np.array([0.78, 0.87, 0.97])
        img[:h] = top * (1 - yy) + low * yy
        floor = (np.array([0.38, 0.62, 0.3]) if scene.background == "sky" else np.array([0.78, 0.68, 0.48]))
        floor = floor * rng.uniform(0.85, 1.1)
    noise = render.smooth_noise((size - h, size), 12, rng)[..., None]
    ramp = np.linspace(0.9, 1.05, size - h)[:, None, None]
    img[h:] = np.clip(floor * ramp * (1 + 0.08 * noise), 0, 1)
    return img


def render_scene_photo(scene: Scene, size: int, rng: np.random.Generator) -> np.ndarray:
    """The scene photo as a float ``(size*SUPERSAMPLE,)*2 x 3`` canvas (objects already placed for it)."""
    big = size * render.SUPERSAMPLE
    img = _background(scene, big, rng)
    extras_col = {"sun": (250, 214, 80), "window": (176, 210, 235)}
    render.draw_parts(img, scene.extras, extras_col, rng, object_px=big * 0.2)
    light = rng.uniform(0, 2 * math.pi)
    for obj in scene.objects:
        render.drop_shadow(img, obj.parts, rng, strength=0.3)
        render.draw_parts(img, obj.parts, obj.colours, rng, light=light)
    return img


def sketch_scene(scene: Scene, style: DrawerStyle, rng: np.random.Generator, photo_canvas: float
                 ) -> tuple[np.ndarray, list[float], list[bool]]:
    """The drawer's scene sketch: stroke-3 ``(N, 3)`` float32 on the 256 canvas, stroke widths, and which
    objects were drawn (scene order)."""
    k = CANVAS / photo_canvas
    n = len(scene.objects)
    drawn = [bool(rng.random() >= P_OMIT_OBJECT) for _ in range(n)]
    if not any(drawn):
        drawn[int(rng.integers(n))] = True
    parts: list[Part] = []
    if rng.random() < 0.7:
        y = scene.horizon * CANVAS + rng.normal(0, 3)
        parts.append(line([[0.0, y], [CANVAS, y + rng.normal(0, 4)]], fill=None, detail=0.95, photo=False))
    for p in scene.extras:
        if rng.random() < 0.6:
            parts.append(p.with_points(p.points * k))
    for obj, keep in zip(scene.objects, drawn):
        if not keep:
            continue
        shift = rng.normal(0.0, 3.0, 2)
        if rng.random() < P_MOVE_OBJECT:
            shift += rng.normal(0.0, 14.0, 2)
        scale = float(np.exp(rng.normal(0.0, 0.08)))
        pts = [p.points * k for p in obj.parts]
        c = np.vstack(pts).mean(axis=0)
        parts.extend(p.with_points((q - c) * scale + c + shift) for p, q in zip(obj.parts, pts))
    strokes, widths = draw_strokes(parts, style, rng)
    return join_strokes(strokes).astype(np.float32), widths, drawn
