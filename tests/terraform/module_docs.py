"""The inputs and outputs tables of each Terraform module's README.md, written from its .tf files.

    python -m tests.terraform.module_docs           # rewrite them
    python -m tests.terraform.module_docs --check   # exit 1 naming each README out of date

terraform-docs' job, done here because terraform-docs can't be installed in this project's
environments. The tables go between `<!-- BEGIN_TF_DOCS -->` and `<!-- END_TF_DOCS -->` in the
module's README.md; everything around the markers is the README's own text.

Terraform's JSON doesn't describe a variable's type (`terraform show -json` gives a plan's
variables without it), and python-hcl2 can't be installed beside checkov, whose fork of it
(bc-python-hcl2) owns the same `hcl2` package and turns type expressions into Python reprs. So
this reads the top-level `variable` and `output` blocks itself: a small scanner that knows
HCL's strings, templates, heredocs, comments and brackets, keeping each type and default as
written, which is what terraform-docs shows too. test_module_docs.py checks what it reads against
Terraform's own view of the same modules (names, descriptions, defaults, required).
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MODULES = ("modules/replication_node", "modules/proxy_host")
BEGIN = "<!-- BEGIN_TF_DOCS -->"
END = "<!-- END_TF_DOCS -->"
COMMAND = "python -m tests.terraform.module_docs"

OPENING = {"(": ")", "[": "]", "{": "}"}
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


class HclError(ValueError):
    pass


@dataclass(frozen=True)
class Attribute:
    name: str
    source: str  # the expression as written, dedented
    line: int


@dataclass(frozen=True)
class Block:
    kind: str
    labels: tuple[str, ...]
    attributes: dict[str, Attribute]
    blocks: tuple[Block, ...]
    path: Path
    line: int


@dataclass(frozen=True)
class Variable:
    name: str
    description: str | None
    type: str | None
    default: str | None  # source text; None when there is no default (required)
    nullable: bool
    sensitive: bool

    @property
    def required(self) -> bool:
        return self.default is None


@dataclass(frozen=True)
class Output:
    name: str
    description: str | None
    sensitive: bool


# --------------------------------------------------------------------------- scanning


class Scanner:
    """Positions in one file's text, skipping over what can hide brackets: strings (with their
    ${...} and %{...} templates), heredocs and comments."""

    def __init__(self, text: str, path: Path) -> None:
        self.text = text
        self.path = path

    def fail(self, at: int, message: str) -> HclError:
        line = self.text.count("\n", 0, at) + 1
        return HclError(f"{self.path}:{line}: {message}")

    def line(self, at: int) -> int:
        return self.text.count("\n", 0, at) + 1

    def skip_space(self, i: int, newlines: bool = True) -> int:
        """Past blanks and comments (and newlines, unless told not to)."""
        text = self.text
        while i < len(text):
            if text[i] in " \t\r" or (newlines and text[i] == "\n"):
                i += 1
            elif text.startswith("#", i) or text.startswith("//", i):
                end = text.find("\n", i)
                i = len(text) if end < 0 else (end if not newlines else end + 1)
            elif text.startswith("/*", i):
                end = text.find("*/", i + 2)
                if end < 0:
                    raise self.fail(i, "unterminated /* comment")
                i = end + 2
            else:
                break
        return i

    def skip_string(self, i: int) -> int:
        """From an opening quote to just past its closing one."""
        text = self.text
        i += 1
        while i < len(text):
            char = text[i]
            if char == "\\":
                i += 2
            elif char == '"':
                return i + 1
            elif text.startswith(("${", "%{"), i) and not text.startswith(("$${", "%%{"), i - 1):
                i = self.skip_brackets(i + 1)
            elif char == "\n":
                raise self.fail(i, "a quoted string can't span lines")
            else:
                i += 1
        raise self.fail(i, "unterminated string")

    def skip_heredoc(self, i: int) -> int:
        """From `<<` to just past the heredoc's closing marker line."""
        match = re.compile(r"<<(-?)([A-Za-z_][A-Za-z0-9_]*)[ \t]*\n").match(self.text, i)
        if not match:
            raise self.fail(i, "malformed heredoc")
        closing = re.compile(rf"^[ \t]*{match.group(2)}[ \t]*$", re.MULTILINE)
        end = closing.search(self.text, match.end())
        if not end:
            raise self.fail(i, f"heredoc {match.group(2)} is never closed")
        return end.end()

    def skip_brackets(self, i: int) -> int:
        """From an opening bracket to just past its match."""
        text = self.text
        expected = [OPENING[text[i]]]
        i += 1
        while expected:
            i = self.skip_space(i)
            if i >= len(text):
                raise self.fail(i, f"unclosed bracket, expected {expected[-1]!r}")
            char = text[i]
            if char == '"':
                i = self.skip_string(i)
            elif text.startswith("<<", i) and re.match(r"<<-?[A-Za-z_]", text[i : i + 4]):
                i = self.skip_heredoc(i)
            elif char in OPENING:
                expected.append(OPENING[char])
                i += 1
            elif char in ")]}":
                if char != expected.pop():
                    raise self.fail(i, f"mismatched {char!r}")
                i += 1
            else:
                i += 1
        return i

    def expression_end(self, i: int) -> int:
        """Where an attribute's expression starting at i ends: the end of its line, outside
        any bracket, string or heredoc."""
        text = self.text
        while i < len(text):
            i = self.skip_space(i, newlines=False)
            if i >= len(text) or text[i] == "\n":
                return i
            char = text[i]
            if char == '"':
                i = self.skip_string(i)
            elif text.startswith("<<", i) and re.match(r"<<-?[A-Za-z_]", text[i : i + 4]):
                i = self.skip_heredoc(i)
                return i
            elif char in OPENING:
                i = self.skip_brackets(i)
            elif char in ")]}":
                return i  # the enclosing block's closing brace on the same line
            else:
                i += 1
        return i

    def body(self, i: int, end: int) -> tuple[dict[str, Attribute], list[Block]]:
        """The attributes and nested blocks between a block's braces (i after `{`)."""
        attributes: dict[str, Attribute] = {}
        blocks: list[Block] = []
        while True:
            i = self.skip_space(i)
            if i >= end:
                return attributes, blocks
            match = IDENTIFIER.match(self.text, i)
            if not match:
                raise self.fail(i, f"expected an argument or a block, found {self.text[i]!r}")
            name, i = match.group(), self.skip_space(match.end(), newlines=False)
            if self.text.startswith("=", i) and not self.text.startswith("==", i):
                start = self.skip_space(i + 1, newlines=False)
                stop = self.expression_end(start)
                source = dedent(self.text[start:stop].rstrip())
                attributes[name] = Attribute(name, source, self.line(start))
                i = stop
            else:
                block, i = self.block(name, match.start(), i)
                blocks.append(block)

    def block(self, kind: str, start: int, i: int) -> tuple[Block, int]:
        labels = []
        while self.text.startswith('"', i):
            stop = self.skip_string(i)
            labels.append(decode_string(self.text[i:stop]))
            i = self.skip_space(stop, newlines=False)
        if not self.text.startswith("{", i):
            raise self.fail(i, f"expected {{ after {kind}")
        stop = self.skip_brackets(i)
        attributes, blocks = self.body(i + 1, stop - 1)
        block = Block(kind, tuple(labels), attributes, tuple(blocks), self.path, self.line(start))
        return block, stop

    def blocks(self) -> Iterator[Block]:
        attributes, blocks = self.body(0, len(self.text))
        if attributes:
            raise self.fail(0, f"top-level arguments in a .tf file: {', '.join(attributes)}")
        yield from blocks


def dedent(source: str) -> str:
    """A multi-line expression with its continuation lines dedented (the first line starts
    where the expression does, so it has no indent of its own)."""
    first, _, rest = source.partition("\n")
    if not rest:
        return first
    return f"{first}\n{textwrap.dedent(rest)}"


ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}


def decode_string(literal: str) -> str:
    """The value of an HCL quoted string without templates."""
    body, out, i = literal[1:-1], [], 0
    while i < len(body):
        char = body[i]
        if char == "\\":
            code = body[i + 1]
            if code in ESCAPES:
                out.append(ESCAPES[code])
                i += 2
            elif code in "uU":
                width = 4 if code == "u" else 8
                out.append(chr(int(body[i + 2 : i + 2 + width], 16)))
                i += 2 + width
            else:
                raise HclError(f"unknown escape \\{code} in {literal}")
        elif body.startswith(("$${", "%%{"), i):
            out.append(body[i + 1 : i + 3])
            i += 3
        elif body.startswith(("${", "%{"), i):
            raise HclError(f"a template, not a plain string: {literal}")
        else:
            out.append(char)
            i += 1
    return "".join(out)


def string_value(attribute: Attribute | None) -> str | None:
    """A description: one quoted string, or a heredoc."""
    if attribute is None:
        return None
    source = attribute.source
    if source.startswith('"') and source.endswith('"'):
        return decode_string(source)
    heredoc = re.match(r"<<(-?)([A-Za-z_][A-Za-z0-9_]*)\n(.*\n)[ \t]*\2$", source, re.DOTALL)
    if heredoc:
        text = heredoc.group(3)
        return textwrap.dedent(text) if heredoc.group(1) else text
    raise HclError(f"line {attribute.line}: write it as one string or a heredoc: {source}")


def bool_value(attribute: Attribute | None, default: bool) -> bool:
    if attribute is None:
        return default
    if attribute.source not in ("true", "false"):
        raise HclError(f"line {attribute.line}: expected true or false: {attribute.source}")
    return attribute.source == "true"


# --------------------------------------------------------------------------- a module


def module_blocks(directory: Path) -> list[Block]:
    found = []
    for path in sorted(directory.glob("*.tf")):
        shown = path.relative_to(REPO) if path.is_relative_to(REPO) else path
        found.extend(Scanner(path.read_text(), shown).blocks())
    return found


def variables(directory: Path) -> list[Variable]:
    return [
        Variable(
            name=block.labels[0],
            description=string_value(block.attributes.get("description")),
            type=block.attributes["type"].source if "type" in block.attributes else None,
            default=block.attributes["default"].source if "default" in block.attributes else None,
            nullable=bool_value(block.attributes.get("nullable"), True),
            sensitive=bool_value(block.attributes.get("sensitive"), False),
        )
        for block in module_blocks(directory)
        if block.kind == "variable"
    ]


def outputs(directory: Path) -> list[Output]:
    return [
        Output(
            name=block.labels[0],
            description=string_value(block.attributes.get("description")),
            sensitive=bool_value(block.attributes.get("sensitive"), False),
        )
        for block in module_blocks(directory)
        if block.kind == "output"
    ]


# --------------------------------------------------------------------------- markdown


def cell(text: str) -> str:
    """Text for a table cell: no raw pipes, newlines or HTML."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return escaped.replace("|", "\\|").replace("\n", "<br/>")


def code(source: str) -> str:
    """An expression in a table cell: inline code, or a <pre> block when it spans lines."""
    if "\n" not in source and "|" not in source:
        return f"`{source}`"
    return f"<pre>{cell(source)}</pre>"


def anchor(kind: str, name: str) -> str:
    escaped = name.replace("_", "\\_")  # as terraform-docs writes the link
    return f'<a name="{kind}_{name}"></a> [{name}](#{kind}\\_{escaped})'


def tables(directory: Path) -> str:
    lines = [
        "## Inputs",
        "",
        "| Name | Description | Type | Default | Required |",
        "|------|-------------|------|---------|:--------:|",
    ]
    for v in variables(directory):
        lines.append(
            f"| {anchor('input', v.name)} | {cell(v.description or '')} | "
            f"{code(v.type or 'any')} | {'n/a' if v.required else code(v.default or '')} | "
            f"{'yes' if v.required else 'no'} |"
        )
    lines += ["", "## Outputs", "", "| Name | Description |", "|------|-------------|"]
    for o in outputs(directory):
        sensitive = " (sensitive)" if o.sensitive else ""
        lines.append(f"| {anchor('output', o.name)} | {cell(o.description or '')}{sensitive} |")
    return "\n".join(lines)


def rendered(readme: str, directory: Path) -> str:
    """The README with its generated section rewritten."""
    if (
        readme.count(BEGIN) != 1
        or readme.count(END) != 1
        or readme.index(BEGIN) > readme.index(END)
    ):
        raise HclError(f"{directory / 'README.md'} needs one {BEGIN} ... {END} section")
    head, rest = readme.split(BEGIN)
    _, tail = rest.split(END)
    return f"{head}{BEGIN}\n{tables(directory)}\n{END}{tail}"


def stale(directories: list[Path]) -> list[Path]:
    """The READMEs whose generated section differs from what the .tf files say."""
    return [
        d / "README.md"
        for d in directories
        if rendered((d / "README.md").read_text(), d) != (d / "README.md").read_text()
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", type=Path, help=f"default: {' '.join(MODULES)}")
    parser.add_argument("--check", action="store_true", help="only report READMEs out of date")
    args = parser.parse_args(argv)
    directories = [m.resolve() for m in args.modules] or [REPO / m for m in MODULES]
    try:
        if args.check:
            out_of_date = stale(directories)
            for readme in out_of_date:
                print(f"{readme.relative_to(REPO)} is out of date: run {COMMAND}", file=sys.stderr)
            return 1 if out_of_date else 0
        for directory in directories:
            readme = directory / "README.md"
            readme.write_text(rendered(readme.read_text(), directory))
            print(f"wrote {readme.relative_to(REPO)}", file=sys.stderr)
    except HclError as problem:
        print(f"module_docs: error: {problem}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
