"""The one patient pseudonymiser: keyed HMAC-SHA256, namespaced by source.

Every patient identifier that reaches the manifest without being published upstream as-is
(a DICOM ``PatientID``, a ``StudyInstanceUID`` standing in for one, an ID that leaked into
another column) goes through :func:`pseudonym`. It lives in ``core`` because both the
parsers (``sources``) and the builder's privacy pass (:mod:`covid19_images.manifest.privacy`)
need it, and a lower layer may not import a higher one.

What it stops:

* casual re-identification from the manifest: the id is not the hospital's record number,
  nor ``sha256(record number)``, which anyone can compute for every number there is;
* linking one person across two published sources: the key is derived per source, so the
  same ``PatientID`` in two sources gives two unrelated ids.

What it does not stop:

* someone who holds the hospital's list of record numbers (or can enumerate a short
  numeric range) and knows the key: they can recompute every id. The default key is public
  on purpose, because patient-level splits must come out the same on every machine that
  builds the manifest; it is pseudonymisation, not anonymisation;
* a deployment that wants ids nobody outside can recompute sets its own secret key in
  ``COVID19_IMAGES_PSEUDONYM_KEY`` (every machine that must agree on the splits needs the
  same value); changing it renames every pseudonymised patient, and a manifest rebuilt from
  scratch then gets new split groups.
"""

from __future__ import annotations

import hashlib
import hmac
import os

#: Environment variable holding a deployment's own pseudonym key (any text).
PSEUDONYM_KEY_ENV = "COVID19_IMAGES_PSEUDONYM_KEY"
#: The project's public default key (see the module docstring for what that does not protect).
DEFAULT_PSEUDONYM_KEY = "covid19-images/patient-pseudonym/v2"
#: Prefix of every pseudonym, so a reader can tell one from an upstream's own id.
PSEUDONYM_PREFIX = "pid-"


def pseudonym_key() -> bytes:
    """The key in force: ``$COVID19_IMAGES_PSEUDONYM_KEY`` when set and non-empty, else the public default."""
    return (os.environ.get(PSEUDONYM_KEY_ENV) or DEFAULT_PSEUDONYM_KEY).encode("utf-8")


def pseudonym(value: str, source: str) -> str:
    """A stable one-way pseudonym (``pid-`` + 16 hex digits) for one patient identifier of one source.

    Args:
        value: the identifier as the upstream holds it; surrounding spaces are ignored, so
            ``" 123 "`` and ``"123"`` are the same patient.
        source: registry name of the source the identifier comes from; it selects the
            per-source key (``HMAC(key, source)``), so ids cannot be joined across sources.
    """
    source_key = hmac.new(pseudonym_key(), source.encode("utf-8"), hashlib.sha256).digest()
    digest = hmac.new(source_key, value.strip().encode("utf-8"), hashlib.sha256).hexdigest()
    return f"{PSEUDONYM_PREFIX}{digest[:16]}"
