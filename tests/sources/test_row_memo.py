"""The row memo replays a row only when everything the row's function depended on is the same:
its cells, its arguments, and the answers to the file questions it asked (``ctx.exists``/``require``).
A real SourceContext over real folders, a memo saved and loaded from disk as the builder does."""

from __future__ import annotations

from pathlib import Path

from covid19_images.core.schema import Entry
from covid19_images.sources.parsing import SourceContext, list_files
from covid19_images.sources.row_memo import RowMemo
from covid19_images.sources.spec import SourceSpec

CALLS: list[str] = []


def _image_of(ctx: SourceContext, row: dict[str, str], folder: str):
    """One entry per row whose image is in ``folder``; the file question is what the memo must re-ask."""
    CALLS.append(row["file"])
    relative = f"{folder}/{row['file']}"
    if not ctx.require(relative, row["_row"], "meta.csv"):
        return
    if row["finding"] == "??":
        ctx.report("unmapped finding", path="meta.csv", row=row["_row"])
    yield Entry(path=relative, modality="xray", finding=row["finding"], row=row["_row"], extra={"n": row["file"]})


def _parse(directory: Path, cache: Path, lines: list[str], folder: str = "images"):
    (directory / "meta.csv").write_text("file,finding\n" + "".join(f"{line}\n" for line in lines))
    memo = RowMemo.load(cache, "demo", "key-1")
    ctx = SourceContext(
        SourceSpec("demo", "", "main", "demo", ("xray",), "CC-BY-4.0"), directory, list_files(directory), memo=memo
    )
    CALLS.clear()
    frame = ctx.read_csv("meta.csv")
    entries = [e for _, row in frame.iterrows() for e in ctx.memoised(dict(row), _image_of, folder)]
    memo.save(cache, "demo")
    return entries, [(p.message, p.row) for p in ctx.problems], list(CALLS)


def test_replays_unchanged_rows_with_their_current_line(tmp_path: Path) -> None:
    data, cache = tmp_path / "src", tmp_path / "cache"
    (data / "images").mkdir(parents=True)
    for name in ("a.png", "b.png"):
        (data / "images" / name).write_bytes(b"x")
    entries, problems, calls = _parse(data, cache, ["a.png,covid", "b.png,??"])
    assert calls == ["a.png", "b.png"]
    assert problems == [("unmapped finding", "meta.csv line 3")]
    entries, problems, calls = _parse(data, cache, ["c.png,normal", "a.png,covid", "b.png,??"])
    assert calls == ["c.png"]  # a and b replayed
    assert [(e.path, e.row, e.extra) for e in entries] == [
        ("images/a.png", "meta.csv line 3", {"n": "a.png"}),
        ("images/b.png", "meta.csv line 4", {"n": "b.png"}),
    ]
    assert problems == [
        ("metadata points at images/c.png, which is not in the checkout", "meta.csv line 2"),
        ("unmapped finding", "meta.csv line 4"),
    ]


def test_a_changed_cell_argument_or_file_answer_recomputes_the_row(tmp_path: Path) -> None:
    data, cache = tmp_path / "src", tmp_path / "cache"
    (data / "images").mkdir(parents=True)
    (data / "images" / "a.png").write_bytes(b"x")
    _parse(data, cache, ["a.png,covid", "b.png,normal"])
    # b.png appears: the row's question "is images/b.png there?" now has another answer
    (data / "images" / "b.png").write_bytes(b"x")
    entries, problems, calls = _parse(data, cache, ["a.png,covid", "b.png,normal"])
    assert calls == ["b.png"]
    assert [e.path for e in entries] == ["images/a.png", "images/b.png"] and problems == []
    # and gone again
    (data / "images" / "a.png").unlink()
    entries, problems, calls = _parse(data, cache, ["a.png,covid", "b.png,normal"])
    assert calls == ["a.png"] and [e.path for e in entries] == ["images/b.png"]
    # a changed cell, and a changed argument
    assert _parse(data, cache, ["a.png,covid", "b.png,pneumonia"])[2] == ["b.png"]
    assert _parse(data, cache, ["a.png,covid", "b.png,pneumonia"], folder="other")[2] == ["a.png", "b.png"]


def test_another_key_starts_from_nothing(tmp_path: Path) -> None:
    data, cache = tmp_path / "src", tmp_path / "cache"
    (data / "images").mkdir(parents=True)
    (data / "images" / "a.png").write_bytes(b"x")
    _parse(data, cache, ["a.png,covid"])
    assert RowMemo.load(cache, "demo", "key-1").stored
    assert not RowMemo.load(cache, "demo", "key-2").stored  # code, registry entry or settings changed


def test_a_few_computed_rows_write_a_delta_and_many_a_new_base(tmp_path: Path) -> None:
    """Rewriting every record for one new row cost a third of a second at 100,000 rows: a build that
    computed a few writes what changed beside the base, and the loaded memo is the whole of both."""
    data, cache = tmp_path / "src", tmp_path / "cache"
    (data / "images").mkdir(parents=True)
    names = [f"{i:03d}.png" for i in range(200)]
    for name in names:
        (data / "images" / name).write_bytes(b"x")
    rows = [f"{name},covid" for name in names]
    _parse(data, cache, rows)
    base, delta = cache / "rows" / "demo.pickle", cache / "rows" / "demo.delta.pickle"
    written = base.read_bytes()
    assert not delta.exists()

    _parse(data, cache, [*rows[:-1], f"{names[-1]},normal", "new.png,covid"])
    assert base.read_bytes() == written and delta.exists()
    entries, _problems, calls = _parse(data, cache, [*rows[:-1], f"{names[-1]},normal", "new.png,covid"])
    assert calls == [] and len(entries) == 200  # everything replayed from base + delta
    kept = delta.read_bytes()

    _parse(data, cache, [f"{name},normal" for name in names])  # every row computed: a new base
    assert base.read_bytes() != written and not delta.exists()
    delta.write_bytes(kept)  # a delta written against the old base is not applied to the new one
    assert _parse(data, cache, [f"{name},normal" for name in names])[2] == []
    memo = RowMemo.load(cache, "demo", "key-1")
    assert memo.token == memo.base_token and len(memo.stored) == 200


def test_a_stored_memo_holds_each_repeated_short_cell_once(tmp_path: Path) -> None:
    """Records of a table repeat its short cells (a finding, a modality, a level): stored shared, they
    load as one object each (fewer objects to make when loading), and replay
    gives the same entries as computing them."""
    data, cache = tmp_path / "src", tmp_path / "cache"
    (data / "images").mkdir(parents=True)
    names = [f"{i:03d}.png" for i in range(300)]
    for name in names:
        (data / "images" / name).write_bytes(b"x")
    rows = [f"{name},{'??' if i % 3 else 'covid'}" for i, name in enumerate(names)]
    computed, problems, _calls = _parse(data, cache, rows)
    memo = RowMemo.load(cache, "demo", "key-1")
    records = list(memo.stored.values())
    assert len(records) == 300
    findings = {id(entries[0][[*Entry.__dataclass_fields__].index("finding")]) for entries, _, _ in records}
    levels = {id(level) for _, reported, _ in records for *_, level in reported}
    keys = {id(key) for entries, _, _ in records for key in entries[0][-1]}
    assert len(findings) == 2 and len(levels) == 1 and len(keys) == 1  # "covid" and "??"; "warning"; "n"
    stored = (cache / "rows" / "demo.pickle").read_bytes()
    assert stored.count(b"covid") == 1 and stored.count(b"warning") == 1
    replayed, again, calls = _parse(data, cache, rows)
    assert calls == [] and replayed == computed and again == problems
