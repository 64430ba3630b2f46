"""YAML parsed by libyaml when PyYAML was built with it.

Every command reads the registry and the catalog's 30 ``source.yaml`` files before it does
anything else. PyYAML's pure-Python parser took 0.068 s of that and libyaml 0.010 s, in a sync
with nothing changed that costs about 0.4 s in all (docs/benchmarks.md, round nine).
The C loader builds the same objects: libyaml only scans and parses, and the same safe
constructor and resolver (``yaml.SafeLoader``'s) turn its events into Python values, so tags,
timestamps and YAML 1.1 booleans come out alike. PyYAML built without libyaml falls back to
the pure-Python loader.
"""

from __future__ import annotations

from typing import Any

import yaml

#: ``yaml.SafeLoader``'s constructor and resolver, on libyaml's parser where PyYAML has it.
SAFE_LOADER: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def safe_load(text: str) -> Any:
    """``yaml.safe_load(text)``, parsed by libyaml when available; raises ``yaml.YAMLError`` the same way."""
    return yaml.load(text, Loader=SAFE_LOADER)  # a safe loader: no arbitrary Python objects
