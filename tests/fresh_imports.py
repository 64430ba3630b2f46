"""What a fresh interpreter imports: for the tests that promise a path stays free of a heavy package."""

from __future__ import annotations

import json
import subprocess
import sys


def packages_imported(code: str, packages: tuple[str, ...]) -> list[str]:
    """The modules of ``packages`` (top-level names) loaded after ``code`` runs in a new Python process."""
    listing = f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {packages!r})))"
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport json, sys\n{listing}"],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])
