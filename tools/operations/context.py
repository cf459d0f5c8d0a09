"""What every operator command gets: both regions' sides, the shared options, and where its
output, progress and logs go."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from tools.operations.sides import Side


@dataclass
class Context:
    here: Side  # --region: the region the command is run for
    peer: Side  # --peer-region: the other side of the border
    dry_run: bool = False
    quiet: bool = False
    json: bool = False
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: Console = field(default_factory=lambda: Console(stderr=True))

    def log(self, message: str) -> None:
        """A line on stderr, unless --quiet."""
        if not self.quiet:
            self.err.print(message, highlight=False)

    def emit(self, summary: dict[str, Any], lines: list[str]) -> None:
        """The command's result on stdout: JSON with --json, else the lines."""
        if self.json:
            print(json.dumps(summary, indent=2, default=str, ensure_ascii=False), file=self.out)
        else:
            for line in lines:
                print(line, file=self.out)

    @contextmanager
    def progress(self) -> Iterator[Progress]:
        """A rich progress display on stderr, hidden with --quiet."""
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[note]}"),
            TimeElapsedColumn(),
            console=self.err,
            disable=self.quiet,
            transient=False,
        )
        with progress:
            yield progress
