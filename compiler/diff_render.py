"""A `Diff` printed for people (text, a markdown PR comment) and for programs (JSON)."""

from __future__ import annotations

from typing import Any

from .diff import CLASSES, Change, Diff

FORMAT_VERSION = 1
GITHUB_COMMENT_LIMIT = 65_536
MARKDOWN_BUDGET = 60_000


def summary(d: Diff) -> str:
    if d.undescribed:
        return ("The revision changed in a way this diff does not describe: compare the two routing tables "
                "(`policy compile -o`) before merging.")
    if not d.changes:
        return "No changes: the policy decides every request as before."
    counts = d.counts()
    parts = ", ".join(f"{counts[k]} {k}" for k in CLASSES)
    return f"{len(d.changes)} change{'s' * (len(d.changes) != 1)}: {parts}."


def _side(label: str, revision: str) -> str:
    return f"{label} ({revision[:19]})"


def render_text(d: Diff) -> str:
    lines = [f"Policy diff {_side(d.base_label, d.base_revision)} -> {_side(d.head_label, d.head_revision)}", ""]
    subject = None
    for c in d.changes:
        if c.subject != subject:
            subject = c.subject
            lines.append(subject)
        lines.append(f"  {c.action} {c.what}  [{c.klass}]")
    lines += ["", summary(d)]
    return "\n".join(lines) + "\n"


def _by_subject(changes: list[Change]) -> dict[str, list[Change]]:
    grouped: dict[str, list[Change]] = {}
    for c in changes:
        grouped.setdefault(c.subject, []).append(c)
    return grouped


def _subject_block(subject: str, changes: list[Change], collapse_after: int) -> str:
    rows = ["| | change | class |", "|---|---|---|"] + [
        f"| `{c.action}` | {_cell(c.what)} | {c.klass} |" for c in changes
    ]
    if len(changes) > collapse_after:
        lines = [f"<details><summary><b>{subject}</b> ({len(changes)} changes)</summary>", "", *rows, "", "</details>", ""]
    else:
        lines = [f"**{subject}**", "", *rows, ""]
    return "\n".join(lines) + "\n"


def render_markdown(d: Diff, collapse_after: int = 3, budget: int = MARKDOWN_BUDGET) -> str:
    """A PR comment: one block per subject, collapsed when long, cut short before GitHub's comment limit."""
    head = "\n".join([
        "### Gatepost policy diff", "",
        f"`{d.base_label}` (`{d.base_revision[:19]}`) → `{d.head_label}` (`{d.head_revision[:19]}`)", "",
        f"**{summary(d)}**", "",
    ])
    if not d.changes:
        return head
    blocks = [(s, cs, _subject_block(s, cs, collapse_after)) for s, cs in _by_subject(d.changes).items()]
    shown: list[str] = []
    size = len(head) + 1
    for i, (_, _, block) in enumerate(blocks):
        if size + len(block) > budget - 600:
            left = blocks[i:]
            hidden = sum(len(cs) for _, cs, _ in left)
            shown.append(
                f"> **Cut short:** {len(left)} more subject{'s' * (len(left) != 1)} ({hidden} change"
                f"{'s' * (hidden != 1)}) not shown, to stay under GitHub's {GITHUB_COMMENT_LIMIT:,}-character "
                "comment limit. The counts above cover every change; run `policy diff BASE HEAD` (text) or "
                "`policy diff BASE HEAD --format json` for the full diff.\n"
            )
            break
        shown.append(block)
        size += len(block)
    return head + "\n" + "\n".join(b.rstrip("\n") + "\n" for b in shown)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_json(d: Diff) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "base": d.base_label,
        "head": d.head_label,
        "base_revision": d.base_revision,
        "head_revision": d.head_revision,
        "summary": {
            "changes": len(d.changes),
            "undescribed_revision_change": d.undescribed,
            **{k.replace(" ", "_"): v for k, v in d.counts().items()},
        },
        "changes": [c.to_json() for c in d.changes],
    }
