"""The report site's HTML pages from Jinja2 templates (``resources/templates/``), autoescaped.

Every value a template prints is HTML-escaped unless it is marked safe (:class:`markupsafe.Markup`, used
only for tables pandas has already escaped), so a hostile file name, model name or caption is shown as
text. ``urlquote`` percent-encodes a relative link target (``quote``: ``/`` kept). Undefined names raise.
"""

from __future__ import annotations

from functools import cache
from typing import Any
from urllib.parse import quote

import jinja2
from markupsafe import Markup, escape

from .paths import RESOURCES_DIR

TEMPLATES_DIR = RESOURCES_DIR / "templates"

__all__ = ["Markup", "TEMPLATES_DIR", "environment", "escape", "render"]


@cache
def environment() -> jinja2.Environment:
    """The one Jinja2 environment: templates from :data:`TEMPLATES_DIR`, autoescaping on for every template."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "css"), default_for_string=True,
                                            default=True),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["urlquote"] = quote
    return env


def render(name: str, **context: Any) -> str:
    """Render the template ``name`` with ``context``."""
    return environment().get_template(name).render(**context)
