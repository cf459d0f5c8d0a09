"""Relative links and #anchors in the Markdown pages, resolved as GitHub resolves them: shared by
tests/test_docs.py (the English pages) and tests/test_translations.py (the Chinese ones)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection
from pathlib import Path

FENCE = re.compile(r"^ *(```|~~~).*?^ *\1[^\n]*", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"(?<!`)`([^`]+)`(?!`)")  # may wrap onto the next line, as in the pages
LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6} +(.+?) *#*$", re.MULTILINE)


def prose(text: str) -> str:
    """The text without code blocks and code spans, where brackets aren't links."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: a link shows its label; lowercase; every character that
    isn't a letter (CJK included), a mark, a digit, `_`, `-` or a space is dropped; spaces become
    hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).lower()
    kept = "".join(
        c for c in text if c.isalnum() or c in "_- " or unicodedata.category(c)[0] == "M"
    )
    return kept.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading's anchor in a Markdown file, numbered as GitHub numbers repeats (-1, -2)."""
    seen: dict[str, int] = {}
    found = set()
    for heading in HEADING.findall(FENCE.sub("", path.read_text())):
        slug = anchor(heading)
        found.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return found


def broken_links(page: Path, root: Path, pending: Collection[Path] = ()) -> list[str]:
    """One line per relative link of `page` that leads nowhere: a file that doesn't exist (but
    those in `pending`, being written) or a #fragment no heading of the Markdown file has."""
    problems = []
    for target in LINK.findall(prose(page.read_text())):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:: not ours to check
            continue
        path_part, _, fragment = target.partition("#")
        destination = (page.parent / path_part).resolve() if path_part else page
        shown = (
            destination.relative_to(root).as_posix()
            if destination.is_relative_to(root)
            else str(destination)
        )
        if not destination.exists():
            if destination not in pending:
                problems.append(f"{target}: {shown} does not exist")
        elif fragment and destination.suffix == ".md" and fragment not in anchors(destination):
            problems.append(f"{target}: no heading in {shown} has the anchor #{fragment}")
    return problems
