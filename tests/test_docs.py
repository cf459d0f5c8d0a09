"""The README stays a short front door, and every relative link in it and in docs/*.md leads
somewhere: to a file that exists and, with a #fragment into Markdown, to a heading there."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.markdown_links import anchor, broken_links

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
README_MAX_LINES = 250
CHINESE_README = "docs/zh-CN/README.md"


def pages() -> list[Path]:
    """README.md and the English pages under docs/ (the Chinese ones are checked on their own)."""
    docs = sorted(p for p in (ROOT / "docs").glob("*.md") if not p.name.startswith("zh-CN"))
    return [README, *docs]


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
    assert broken_links(page, ROOT) == []


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


def test_a_broken_link_and_a_missing_anchor_are_found(tmp_path):
    (tmp_path / "target.md").write_text("# Title\n\n## A section\n")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](target.md#a-section) [gone](nowhere.md) [wrong](target.md#no-such)\n"
        "`[not a link](nowhere.md)`\n```\n[nor this](nowhere.md)\n```\n"
        "[web](https://example.com)\n"
    )
    assert broken_links(page, tmp_path) == [
        "nowhere.md: nowhere.md does not exist",
        "target.md#no-such: no heading in target.md has the anchor #no-such",
    ]
