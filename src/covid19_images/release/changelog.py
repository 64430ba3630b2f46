"""``CHANGELOG.md``: one section per release, newest first, written from :class:`~.changes.Changes`.

Per source: the commit the pin moved from and to, images added and removed, relabelled
images (with their old and new label), images that changed split with the reason, and the
problems that are new in this release; then sources added and removed, and the upstream
updates a sync refused or that failed. A reader comparing two versions finds here why the
numbers differ.
"""

from __future__ import annotations

from pathlib import Path

from covid19_images.release.changes import Changes, SourceDelta

CHANGELOG_FILE = "CHANGELOG.md"
HEADER = (
    "# Changelog\n\n"
    "Releases of the covid19-images collection (calendar versions; `covid19-images release VERSION` "
    "writes each section from the manifests at the previous release and at the new one). Load a release "
    'with `load_manifest(version="...")` or `load_covid_*(..., version="...")`.\n'
)
#: examples listed per kind of change (the counts are always complete)
LIMIT = 10


def _short(commit: str | None) -> str:
    return commit[:12] if commit else "none"


def _listed(title: str, lines: list[str]) -> list[str]:
    if not lines:
        return []
    shown = [f"  - {line}" for line in lines[:LIMIT]]
    if len(lines) > LIMIT:
        shown.append(f"  - … and {len(lines) - LIMIT} more")
    return [f"- {title}:", *shown]


def _where(problem: dict[str, str]) -> str:
    path, row = problem["path"], problem["row"]
    if row and (not path or row.startswith(path)):
        return row
    return f"{path} {row}".strip() or "(the source as a whole)"


def source_lines(delta: SourceDelta) -> list[str]:
    """The bullet lines of one source's changes."""
    change = delta.change
    if delta.status == "new":
        head = f"- new source, pinned at {_short(delta.new_pin)}: {delta.images_after} images"
    elif delta.status == "removed":
        head = f"- source removed (was pinned at {_short(delta.old_pin)}): −{delta.images_before} images"
    elif delta.status == "moved":
        head = f"- commit {_short(delta.old_pin)} → {_short(delta.new_pin)}"
    else:
        head = f"- commit {_short(delta.new_pin)} (unchanged)"
    lines = [
        head,
        f"- +{len(change.added)} images, −{len(change.removed)} images, {len(change.relabelled)} relabelled "
        f"({delta.images_before} → {delta.images_after} images)",
    ]
    lines += _listed("relabelled", [f"`{p}`: {a} → {b}" for p, a, b in change.relabelled])
    lines += _listed(
        "changed split", [f"`{m.path}`: {m.old_split} → {m.new_split} ({m.reason})" for m in delta.split_moves]
    )
    lines += _listed(
        f"{len(delta.new_problems)} new problem(s)",
        [f"{p['level']}: {_where(p)}: {p['message']}" for p in delta.new_problems],
    )
    if delta.resolved_problems:
        lines.append(f"- {delta.resolved_problems} problem(s) of the previous release no longer reported")
    return lines


def render_section(version: str, date: str, changes: Changes) -> str:
    """The Markdown section of ``version`` (released on ``date``, ISO)."""
    before = 0 if changes.before is None else len(changes.before)
    after = len(changes.after)
    since = f"since {changes.old}" if changes.old else "first release"
    added = sum(len(d.change.added) for d in changes.sources.values())
    removed = sum(len(d.change.removed) for d in changes.sources.values())
    splits = changes.after["split"].value_counts().to_dict()
    lines = [
        f"## {version} ({date})",
        "",
        f"{since}: {before} → {after} images (+{added}, −{removed}); "
        f"{changes.after['source'].nunique()} sources with images; splits train {splits.get('train', 0)}, "
        f"val {splits.get('val', 0)}, test {splits.get('test', 0)}.",
        "",
    ]
    new = [d.source for d in changes.sources.values() if d.status == "new"]
    gone = [d.source for d in changes.sources.values() if d.status == "removed"]
    if changes.old:
        lines += [f"New sources: {', '.join(new) or 'none'}. Removed sources: {', '.join(gone) or 'none'}.", ""]
    for delta in changes.sources.values():
        if not delta.changed:
            continue
        lines += [f"### {delta.source}", "", *source_lines(delta), ""]
    unchanged = [d.source for d in changes.sources.values() if not d.changed]
    if unchanged:
        lines += [f"Unchanged: {', '.join(unchanged)}.", ""]
    if changes.refusals:
        lines += ["### Upstream updates refused or failed (kept at their pin)", ""]
        lines += [f"- {r['source']} ({r['status']}): {r['message']}" for r in changes.refusals] + [""]
    if changes.notes:
        lines += ["### Notes from sync", "", *[f"- {note}" for note in changes.notes], ""]
    return "\n".join(lines)


def updated_changelog(existing: str | None, section: str) -> str:
    """``CHANGELOG.md`` with ``section`` inserted as the newest (right after the header)."""
    if not existing or not existing.startswith("# Changelog"):
        return HEADER + "\n" + section.rstrip("\n") + "\n" + ("" if not existing else "\n" + existing)
    head, marker, rest = existing.partition("\n## ")
    body = (marker.lstrip("\n") + rest) if marker else ""
    return head.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n" + ("\n" + body if body else "")


def write_section(root: Path, section: str) -> str:
    """The new text of the root's ``CHANGELOG.md`` (not written: the caller writes atomically)."""
    path = Path(root) / CHANGELOG_FILE
    return updated_changelog(path.read_text(encoding="utf-8") if path.is_file() else None, section)
