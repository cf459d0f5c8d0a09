"""What every operator tool's command line shares: user errors as one clean line."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn


class UsageError(Exception):
    """The command line asked for something that can't be: exit 2, one line."""


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad option is a UsageError (one line), not usage text and exit."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def fail(prog: str, error: object, code: int) -> int:
    """Print `prog: error: ...` on one line to stderr; return the exit code."""
    print(f"{prog}: error: {' '.join(str(error).split())}", file=sys.stderr)
    return code
