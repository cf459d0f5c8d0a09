"""Reading terraform.tfvars as Terraform does, without Terraform: the literal subset of HCL a
tfvars file may hold (strings with escapes and heredocs, numbers, booleans, null, lists,
objects, comments), the .json and .auto.tfvars files and TF_VAR_ variables, in Terraform's
order. The operator install carries no HCL parser, and the tools need only a few values.

    values = read_tfvars(Path("envs/cn-north-1"))    # {"existing_tables": [...], ...}
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.build_lambdas import shown


class TfvarsError(ValueError):
    """A tfvars file this reader can't read: the message names the line."""


TOKEN = re.compile(
    r"""
    (?P<space>[ \t\r]+)
  | (?P<comment>(?:\#|//)[^\n]*|/\*.*?\*/)
  | (?P<newline>\n)
  | (?P<heredoc><<-?(?P<tag>[A-Za-z_][A-Za-z0-9_]*)[ \t]*\n)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_-]*)
  | (?P<punct>[=:,\[\]{}().])
    """,
    re.VERBOSE | re.DOTALL,
)
ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}


@dataclass(frozen=True)
class Token:
    kind: str  # string, number, ident, punct, newline
    value: Any
    line: int


def tokens(text: str) -> Iterator[Token]:
    position, line = 0, 1
    while position < len(text):
        match = TOKEN.match(text, position)
        if match is None:
            raise TfvarsError(f"line {line}: unexpected {text[position]!r}")
        kind = match.lastgroup if match.lastgroup != "tag" else "heredoc"
        start_line = line
        line += match.group().count("\n")
        position = match.end()
        if kind == "heredoc":
            tag = match.group("tag")
            end = re.compile(rf"^[ \t]*{re.escape(tag)}[ \t]*$", re.MULTILINE).search(
                text, position
            )
            if end is None:
                raise TfvarsError(f"line {start_line}: heredoc {tag} never ends")
            body = text[position : end.start()]
            if match.group().startswith("<<-"):  # indented heredoc: strip the common indent
                lines = body.split("\n")
                indent = min((len(s) - len(s.lstrip()) for s in lines if s.strip()), default=0)
                body = "\n".join(s[indent:] for s in lines)
            line += text.count("\n", position, end.end())
            position = end.end()
            yield Token("string", body, start_line)
        elif kind == "string":
            yield Token("string", _unquote(match.group(), start_line), start_line)
        elif kind == "number":
            number = match.group()
            yield Token(
                "number", float(number) if re.search("[.eE]", number) else int(number), line
            )
        elif kind in ("ident", "punct", "newline"):
            yield Token(kind, match.group(), start_line)


def _unquote(quoted: str, line: int) -> str:
    body = quoted[1:-1]
    if re.search(r"(?<!\$)\$\{|(?<!%)%\{", body.replace("$${", "").replace("%%{", "")):
        raise TfvarsError(f"line {line}: a template (${{...}}) can't be read here; use a literal")

    def escape(match: re.Match[str]) -> str:
        code = match.group(1)
        if code in ESCAPES:
            return ESCAPES[code]
        if code[0] in "uU":
            return chr(int(code[1:], 16))
        raise TfvarsError(f"line {line}: unknown escape \\{code}")

    text = re.sub(r"\\(u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)", escape, body)
    return text.replace("$${", "${").replace("%%{", "%{")


class _Parser:
    def __init__(self, text: str):
        self.tokens = list(tokens(text))
        self.at = 0

    def peek(self, skip_newlines: bool = False) -> Token | None:
        if skip_newlines:
            while self.at < len(self.tokens) and self.tokens[self.at].kind == "newline":
                self.at += 1
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self, skip_newlines: bool = False) -> Token:
        token = self.peek(skip_newlines)
        if token is None:
            last = self.tokens[-1].line if self.tokens else 1
            raise TfvarsError(f"line {last}: the file ends in the middle of a value")
        self.at += 1
        return token

    def body(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        while self.peek(skip_newlines=True) is not None:
            name = self.take()
            if name.kind != "ident":
                raise TfvarsError(f"line {name.line}: expected a variable name, not {name.value!r}")
            equals = self.take()
            if equals.value != "=":
                raise TfvarsError(f"line {equals.line}: expected '=' after {name.value}")
            if name.value in values:
                raise TfvarsError(
                    f"line {name.line}: {name.value} is set twice (Terraform refuses that)"
                )
            values[name.value] = self.value()
            after = self.peek()
            if after is not None and after.kind != "newline":
                raise TfvarsError(f"line {after.line}: one variable per line ({after.value!r})")
        return values

    def value(self) -> Any:
        token = self.take(skip_newlines=True)
        if token.kind in ("string", "number"):
            return token.value
        if token.kind == "ident":
            literals = {"true": True, "false": False, "null": None}
            if token.value in literals:
                return literals[token.value]
            raise TfvarsError(
                f"line {token.line}: {token.value} is not a literal value (tfvars hold only "
                "strings, numbers, booleans, null, lists and objects)"
            )
        if token.value == "[":
            return self._sequence("]", lambda: self.value())
        if token.value == "{":
            return dict(self._sequence("}", self._member))
        raise TfvarsError(f"line {token.line}: unexpected {token.value!r}")

    def _member(self) -> tuple[str, Any]:
        key = self.take(skip_newlines=True)
        if key.kind not in ("ident", "string"):
            raise TfvarsError(f"line {key.line}: expected a key, not {key.value!r}")
        separator = self.take()
        if separator.value not in ("=", ":"):
            raise TfvarsError(f"line {separator.line}: expected '=' after {key.value}")
        return str(key.value), self.value()

    def _sequence(self, close: str, item: Callable[[], Any]) -> list[Any]:
        items = []
        while True:
            token = self.peek(skip_newlines=True)
            if token is None:
                raise TfvarsError(f"line {self.tokens[-1].line}: missing {close!r}")
            if token.value == close and token.kind == "punct":
                self.at += 1
                return items
            items.append(item())
            after = self.peek(skip_newlines=close == "]")
            if after is not None and after.kind == "punct" and after.value == ",":
                self.at += 1
            elif after is not None and not (after.kind == "newline" or after.value == close):
                raise TfvarsError(f"line {after.line}: expected ',' or {close!r}")


def parse_tfvars(text: str) -> dict[str, Any]:
    """The variables an HCL tfvars file sets, by name."""
    return _Parser(text).body()


def parse_value(text: str) -> Any:
    """One HCL literal, as Terraform reads a TF_VAR_ of a list or object type."""
    parser = _Parser(text)
    value = parser.value()
    if parser.peek(skip_newlines=True) is not None:
        raise TfvarsError("more than one value")
    return value


def tfvars_files(env: Path) -> list[Path]:
    """The files Terraform loads on its own, in its order (later ones win)."""
    automatic = sorted(
        p for p in env.iterdir() if p.name.endswith((".auto.tfvars", ".auto.tfvars.json"))
    )
    fixed = [env / "terraform.tfvars", env / "terraform.tfvars.json"]
    return [p for p in fixed if p.is_file()] + [p for p in automatic if p.is_file()]


def read_tfvars(
    env: Path,
    from_environment: Collection[str] = (),
    typed: Collection[str] = (),
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The variables set for the environment in `env`, as Terraform would merge them: those
    named in `from_environment` from TF_VAR_<name> first (read as HCL for the `typed` ones,
    whose type isn't string), then the files."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for name in from_environment:
        raw = environ.get(f"TF_VAR_{name}")
        if raw is not None:
            try:
                values[name] = parse_value(raw) if name in typed else raw
            except TfvarsError as error:
                raise TfvarsError(f"TF_VAR_{name}: {error}") from None
    for path in tfvars_files(env):
        try:
            text = path.read_text()
            values.update(json.loads(text) if path.suffix == ".json" else parse_tfvars(text))
        except (OSError, ValueError) as error:
            raise TfvarsError(f"cannot read {shown(path)}: {error}") from None
    return values
