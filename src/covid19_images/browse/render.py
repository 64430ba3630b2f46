"""The Jinja2 environment both the server and the static export render with.

Autoescaping is on for every template: manifest values (file names, findings, messages from
upstream metadata) are hostile input and reach the page only as text. External links go
through the ``https`` filter, which drops anything that is not an ``https://`` URL (a registry
``license_url`` of ``javascript:...`` renders as no link).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from covid19_images.core.schema import SPLITS

#: The stylesheet folder, served at /static and copied into a static export.
STATIC = Path(__file__).parent / "static"


def https_only(url: object) -> str:
    text = str(url or "")
    return text if text.startswith("https://") else ""


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("covid19_images.browse", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["https"] = https_only
    return env


def render(template: str, links: Any, images_total: int, **context: Any) -> str:
    """One page as HTML text."""
    page = environment().get_template(template)
    return page.render(links=links, images_total=images_total, splits=SPLITS, **context)
