"""The guard of identifying values misses nothing that ``privacy.redact`` would remove.

Every check compares against the real redaction (``re.IGNORECASE`` over the escaped values): a
text that redaction changes must hit. The guard may hit without a value (a collision, or a
character it blurs), which only costs re-reading the source; with plain ASCII it must not.
"""

from __future__ import annotations

import json
import random
import re
import sys

import pytest

from covid19_images.manifest.privacy import redact
from covid19_images.manifest.secret_guard import Guard, guard_hits, guard_of


def _folded_onto_ascii() -> dict[str, list[str]]:
    """Every non-ASCII character Python's case-insensitive matching equates with ASCII ones."""
    found: dict[str, list[str]] = {}
    for point in range(128, sys.maxunicode + 1):
        char = chr(point)
        if 0xD800 <= point <= 0xDFFF or not re.fullmatch("[\x00-\x7f]", char, re.IGNORECASE):
            continue
        found[char] = [chr(a) for a in range(128) if re.fullmatch(re.escape(chr(a)), char, re.IGNORECASE)]
    return found


def _variant(secret: str, rng: random.Random, folded: dict[str, list[str]]) -> str:
    """``secret`` spelt as case-insensitive matching still finds it: cases swapped, letters folded."""
    partners = {a: c for c, ascii_chars in folded.items() for a in ascii_chars}
    out = []
    for char in secret:
        pick = rng.random()
        out.append(partners[char] if char in partners and pick < 0.3 else char.swapcase() if pick < 0.6 else char)
    return "".join(out)


def test_every_character_python_folds_onto_ascii_still_hits() -> None:
    folded = _folded_onto_ascii()
    assert folded, "Python's case folding equates no non-ASCII character with ASCII: the check is empty"
    for char, partners in folded.items():
        for ascii_char in partners:
            secret = f"ab{ascii_char}cd"
            text = f"file xab{char}cdy.png"
            assert redact(text, {secret}) != text  # the real redaction finds it
            assert guard_hits([text], {"s": guard_of({secret})}) == {"s"}, (char, ascii_char)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_guard_hits_wherever_redaction_removes_something(seed: int) -> None:
    rng = random.Random(seed)
    folded = _folded_onto_ascii()
    alphabet = "abcdeikKsSxyzAB019 ^-_./\x00éÉß" + "".join(folded)
    trials = hits = 0
    for _ in range(400):
        secrets = {"".join(rng.choice(alphabet) for _ in range(rng.randint(3, 8))) for _ in range(rng.randint(1, 4))}
        guard = guard_of(secrets)
        texts = []
        for _ in range(rng.randint(1, 6)):
            text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
            if rng.random() < 0.5:
                cut = rng.randint(0, len(text))
                text = text[:cut] + _variant(rng.choice(sorted(secrets)), rng, folded) + text[cut:]
            texts.append(text)
        changed = [t for t in texts if redact(t, secrets) != t]
        trials += 1
        if changed:
            hits += 1
            assert guard_hits(texts, {"s": guard}) == {"s"}, (secrets, changed)
            assert guard_hits(changed[:1], {"s": guard}) == {"s"}, (secrets, changed)
    assert hits > trials // 4, "too few texts held a value for the check to mean anything"


def test_plain_ascii_texts_without_a_value_never_hit() -> None:
    """Without blurred characters a hit means the value is there (64-bit digests)."""
    rng = random.Random(7)
    alphabet = "abcdefghjlmnopqrtuvwxyz0123456789 -_."  # no i, k, s: the blurred letters
    for _ in range(300):
        secrets = {"".join(rng.choice(alphabet) for _ in range(rng.randint(3, 8))) for _ in range(3)}
        texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60))) for _ in range(5)]
        expected = {"s"} if any(redact(t, secrets) != t for t in texts) else set()
        assert guard_hits(texts, {"s": guard_of(secrets)}) == expected, (secrets, texts)


def test_a_window_never_joins_two_texts_but_a_value_holding_nul_still_hits() -> None:
    guard = guard_of({"abcdef"})
    assert guard_hits(["xxabc", "defyy"], {"s": guard}) == set()
    assert guard_hits(["xxabc", "abcdefyy"], {"s": guard}) == {"s"}
    nul = guard_of({"ab\x00cd"})
    assert guard_hits(["-AB\x00cd-"], {"s": nul}) == {"s"}
    assert guard_hits([], {"s": guard}) == set() and guard_hits(["abcdef"], {}) == set()


def test_only_the_guards_whose_values_occur_hit() -> None:
    guards = {"one": guard_of({"Doerr^Janet", "Janet"}), "two": guard_of({"ZZ-PAT-8842731"})}
    assert guard_hits(["row 3: patient zz-pat-8842731"], guards) == {"two"}
    assert guard_hits(["JANET", "zz-pat-8842731"], guards) == {"one", "two"}
    assert guard_hits(["jan et", "ZZ-PAT-884273"], guards) == set()


def test_a_guard_is_stored_as_numbers_and_anything_else_is_refused() -> None:
    secrets = {"Doerr^Janet^Q", "St Example General Hospital", "19650312"}
    guard = guard_of(secrets)
    stored = json.dumps(guard.to_json())
    assert not any(s.lower() in stored.lower() for s in secrets)
    data = json.loads(stored)
    assert set(data) == {"base", "digests"} and isinstance(data["base"], int)
    assert all(n.isdigit() and all(isinstance(d, int) for d in items) for n, items in data["digests"].items())
    assert sorted(map(int, data["digests"])) == sorted({len(s) for s in secrets})
    again = Guard.from_json(json.loads(stored))
    assert again == guard and guard_hits(["doerr^janet^q"], {"s": again}) == {"s"}
    assert guard_of(secrets).base != guard.base  # a fresh base each time
    for damaged in (
        None,
        "guard",
        [1, 2],
        {"base": guard.base},
        {"base": guard.base + 1, "digests": {"11": [1]}},  # an even base
        {"base": -3, "digests": {"11": [1]}},
        {"base": 3, "digests": {}},
        {"base": 3, "digests": {"0": [1]}},
        {"base": 3, "digests": {"x": [1]}},
        {"base": 3, "digests": {"4": ["one"]}},
        {"base": 3, "digests": {"4": [-1]}},
        {"base": 3, "digests": {"4": [2**64]}},
    ):
        assert Guard.from_json(damaged) is None, damaged
