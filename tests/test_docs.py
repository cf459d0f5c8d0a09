"""The README stays a short front door, and every relative link in it and in docs/*.md leads
somewhere: to a file that exists and, with a #fragment into Markdown, to a heading there."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
README_MAX_LINES = 250
CHINESE_README = "docs/zh-CN/README.md"

FENCE = re.compile(r"^ *(```|~~~).*?^ *\1", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6} +(.+?) *#*$", re.MULTILINE)


def pages() -> list[Path]:
    """README.md and the English pages under docs/ (the Chinese ones are checked on their own)."""
    docs = sorted(p for p in (ROOT / "docs").glob("*.md") if not p.name.startswith("zh-CN"))
    return [README, *docs]


def prose(text: str) -> str:
    """The text without code blocks and code spans, where brackets aren't links."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link shows its label
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading's anchor in a Markdown file, numbered as GitHub numbers repeats (-1, -2)."""
    seen: dict[str, int] = {}
    found = set()
    for heading in HEADING.findall(FENCE.sub("", path.read_text())):
        slug = anchor(heading)
        found.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return found


def broken_links(page: Path) -> list[str]:
    problems = []
    for target in LINK.findall(prose(page.read_text())):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:: not ours to check
            continue
        path_part, _, fragment = target.partition("#")
        destination = (page.parent / path_part).resolve() if path_part else page
        relative = (
            destination.relative_to(ROOT).as_posix() if destination.is_relative_to(ROOT) else ""
        )
        if not destination.exists():
            problems.append(f"{target}: {relative or destination} does not exist")
        elif fragment and destination.suffix == ".md" and fragment not in anchors(destination):
            problems.append(f"{target}: no heading in {relative} has the anchor #{fragment}")
    return problems


def test_the_readme_is_short():
    lines = README.read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines, more than {README_MAX_LINES}: move detail to docs/"
    )


def test_the_readme_opens_with_the_link_to_the_chinese_version():
    first = README.read_text().splitlines()[0]
    assert f"]({CHINESE_README})" in first, f"README.md's first line must link {CHINESE_README}"


@pytest.mark.parametrize("page", pages(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_leads_somewhere(page):
    assert broken_links(page) == []


def test_the_pages_link_to_each_other():
    readme = README.read_text()
    for name in ("design", "deploying", "operating", "developing"):
        assert f"](docs/{name}.md" in readme, f"README.md doesn't link docs/{name}.md"


def test_anchors_follow_githubs_rules():
    assert anchor("Operating with `tools/ops.py`") == "operating-with-toolsopspy"
    assert anchor("The proxy host (`modules/proxy_host`)") == "the-proxy-host-modulesproxy_host"
    assert anchor("Signed changes: what the peer's writer key can and can't do") == (
        "signed-changes-what-the-peers-writer-key-can-and-cant-do"
    )


def test_a_broken_link_and_a_missing_anchor_are_found(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    (tmp_path / "target.md").write_text("# Title\n\n## A section\n")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](target.md#a-section) [gone](nowhere.md) [wrong](target.md#no-such)\n"
        "`[not a link](nowhere.md)`\n```\n[nor this](nowhere.md)\n```\n"
        "[web](https://example.com)\n"
    )
    assert broken_links(page) == [
        "nowhere.md: nowhere.md does not exist",
        "target.md#no-such: no heading in target.md has the anchor #no-such",
    ]
