"""Category + attributes -> geometry: one builder per object category.

Each builder takes the instance's attribute dict (see ``shapes.CATEGORY_SPECS``) and a numpy Generator
(for small placements such as fruit), and returns a list of :class:`~..geometry.Part` in object units,
y up, drawn back to front. Colour roles (``main``, ``second``, ``dark``, ...) are resolved by the renderer.
The builders live by kind of object: ``shoe`` (the fine-grained category), ``household`` (chair, mug,
lamp, bottle) and ``outdoor`` (house, tree, car); this module holds the registry.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..geometry import Part
from .household import bottle, chair, lamp, mug
from .outdoor import car, house, tree
from .shoe import shoe

Builder = Callable[[dict, np.random.Generator], list[Part]]

BUILDERS: dict[str, Builder] = {
    "shoe": shoe, "chair": chair, "mug": mug, "lamp": lamp,
    "bottle": bottle, "house": house, "tree": tree, "car": car,
}
