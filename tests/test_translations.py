"""Every user-facing English page has a Simplified Chinese mirror in docs/zh-CN/ under the same
name, and the mirror gives the reader exactly what the English page does to type or paste: the
same fenced code blocks, the same commands in inline code in the same order, and the same
generated tables. The two open with a link to each other (the English page with the line
`[中文](<its mirror>)`), and every relative link and #anchor in the Chinese pages leads somewhere
(anchors of Chinese headings follow GitHub's rules)."""

from __future__ import annotations

import os
import re
import sys
import textwrap
from pathlib import Path

import pytest

from tests.markdown_links import CODE_SPAN, FENCE, LINK, anchor, broken_links

ROOT = Path(__file__).resolve().parent.parent
CHINESE = ROOT / "docs" / "zh-CN"

# The English pages a user reads; each has its mirror at docs/zh-CN/<its file name>.
PAGES = (
    "README.md",
    "docs/design.md",
    "docs/deploying.md",
    "docs/operating.md",
    "docs/upgrading.md",
    "docs/uninstalling.md",
    "docs/cost.md",
    "docs/migrating.md",
)
# For the people who change the code, not the ones who deploy and run it: English only.
ENGLISH_ONLY = ("docs/developing.md",)
# Mirrors still being written. Strict: once one exists and matches, its mark must go.
BEING_TRANSLATED: tuple[str, ...] = ()

COMMAND_STARTS = ("python ", "terraform ", "aws ", "make ", "cd ", "AWS_PROFILE=", "ddb-repl-")

GENERATED = re.compile(r"<!-- BEGIN_(\w+) -->.*?<!-- END_\1 -->", re.DOTALL)


def mirror(page: str) -> Path:
    return CHINESE / Path(page).name


def pair(page: str) -> tuple[str, str]:
    """The English page's text and its mirror's; a missing file fails with what to write."""
    english, chinese = ROOT / page, mirror(page)
    assert english.exists(), f"{page} does not exist"
    assert chinese.exists(), f"{page} has no Chinese mirror: write {chinese.relative_to(ROOT)}"
    return english.read_text(), chinese.read_text()


def code_blocks(text: str) -> list[str]:
    """The fenced code blocks, each without the indentation of the list item it may sit in."""
    return [textwrap.dedent(block.group(0)) for block in FENCE.finditer(text)]


def commands(text: str) -> list[str]:
    """Inline code outside code blocks that is a command, with a line break read as a space."""
    spans = (" ".join(span.split()) for span in CODE_SPAN.findall(FENCE.sub("", text)))
    return [span for span in spans if span.startswith(COMMAND_STARTS)]


def first_line_links(path: Path) -> set[Path]:
    first = path.read_text().splitlines()[0]
    return {(path.parent / target).resolve() for target in LINK.findall(first)}


def each_page():
    return [
        pytest.param(
            page,
            id=page,
            marks=[pytest.mark.xfail(strict=True, reason="being translated")]
            if page in BEING_TRANSLATED
            else [],
        )
        for page in PAGES
    ]


def test_the_list_of_pages_holds_every_english_page():
    english = {p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md")}
    unlisted = english - set(PAGES) - set(ENGLISH_ONLY)
    assert not unlisted, f"add {sorted(unlisted)} to PAGES (or ENGLISH_ONLY) in this test"
    missing = {p for p in PAGES if not (ROOT / p).exists()} - set(BEING_TRANSLATED)
    assert not missing, f"PAGES lists {sorted(missing)}, which don't exist"


def test_every_chinese_page_mirrors_an_english_one():
    names = {Path(p).name for p in PAGES}
    strays = sorted(p.name for p in CHINESE.glob("*.md") if p.name not in names)
    assert not strays, f"docs/zh-CN/ has {strays}, which mirror no page listed in PAGES"


@pytest.mark.parametrize("page", each_page())
def test_the_code_blocks_are_the_english_ones(page):
    english, chinese = pair(page)
    assert code_blocks(chinese) == code_blocks(english)


@pytest.mark.parametrize("page", each_page())
def test_the_inline_commands_are_the_english_ones_in_order(page):
    english, chinese = pair(page)
    assert commands(chinese) == commands(english)


@pytest.mark.parametrize("page", each_page())
def test_the_generated_tables_are_the_english_ones(page):
    english, chinese = pair(page)
    assert GENERATED.findall(chinese) == GENERATED.findall(english)
    assert [m.group(0) for m in GENERATED.finditer(chinese)] == [
        m.group(0) for m in GENERATED.finditer(english)
    ]


@pytest.mark.parametrize("page", each_page())
def test_the_chinese_page_opens_with_a_link_to_the_english_one(page):
    pair(page)
    assert (ROOT / page).resolve() in first_line_links(mirror(page)), (
        f"the first line of {mirror(page).relative_to(ROOT)} must link {page}"
    )


@pytest.mark.parametrize("page", PAGES)
def test_the_english_page_opens_with_a_link_to_the_chinese_one(page):
    lines = (ROOT / page).read_text().splitlines()
    link = f"[中文]({Path(os.path.relpath(mirror(page), (ROOT / page).parent)).as_posix()})"
    assert lines[:2] == [link, ""], f"{page} must open with the line {link}, then a blank line"


@pytest.mark.parametrize(
    "page", sorted(CHINESE.glob("*.md")), ids=lambda p: p.relative_to(ROOT).as_posix()
)
def test_every_relative_link_leads_somewhere(page):
    assert broken_links(page, ROOT, {mirror(p) for p in BEING_TRANSLATED}) == []


def test_anchors_of_chinese_headings_follow_githubs_rules():
    assert anchor("使用 `tools/ops.py` 运维") == "使用-toolsopspy-运维"
    assert anchor("签名的变更：对端的写入者密钥能做什么、不能做什么") == (
        "签名的变更对端的写入者密钥能做什么不能做什么"
    )
    assert anchor("告警和仪表板（Terraform）") == "告警和仪表板terraform"
    assert anchor("The proxy host (`modules/proxy_host`)") == "the-proxy-host-modulesproxy_host"


def test_a_mismatch_is_found(tmp_path, monkeypatch):
    """The checks can fail: a changed command, a changed code block and a broken anchor."""
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "CHINESE", tmp_path / "docs" / "zh-CN")
    (tmp_path / "docs" / "zh-CN").mkdir(parents=True)
    (tmp_path / "docs" / "page.md").write_text(
        "[中文](zh-CN/page.md)\n\n# Page\n\nRun `python tools/ops.py status --region\ncn-north-1`"
        " then `make test`.\n\n```sh\nmake demo\n```\n"
    )
    chinese = tmp_path / "docs" / "zh-CN" / "page.md"
    chinese.write_text(
        "[English](../page.md)\n\n# 页面\n\n先运行 `make test`，再运行"
        " `python tools/ops.py status --region cn-north-1`。\n\n```sh\nmake  demo\n```\n"
        "[见此](#页面) [错误](#页面-1) [别处](../nowhere.md)\n"
    )
    english, translated = pair("docs/page.md")
    assert commands(english) == ["python tools/ops.py status --region cn-north-1", "make test"]
    assert commands(translated) == list(reversed(commands(english)))
    assert code_blocks(translated) != code_blocks(english)
    assert (tmp_path / "docs" / "page.md").resolve() in first_line_links(chinese)
    assert broken_links(chinese, tmp_path) == [
        "#页面-1: no heading in docs/zh-CN/page.md has the anchor #页面-1",
        "../nowhere.md: docs/nowhere.md does not exist",
    ]
