"""What every operator tool's command line shares: user errors as one clean line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import NoReturn

from botocore.exceptions import BotoCoreError, ClientError


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


def run(
    prog: str,
    command: Callable[[], int],
    failures: tuple[type[Exception], ...] = (),
    aws: str = "AWS",
    interrupted: str = "interrupted",
) -> int:
    """Run a tool's command and turn what it raises into its exit code and one line: a bad
    command line 2; one of the tool's own `failures` or an AWS error 1 (`aws` names the
    service); Ctrl-C 130."""
    try:
        return command()
    except UsageError as error:
        return fail(prog, error, 2)
    except failures as error:
        return fail(prog, error, 1)
    except (ClientError, BotoCoreError) as error:
        return fail(prog, f"{aws}: {error}", 1)
    except KeyboardInterrupt:
        return fail(prog, interrupted, 130)


def int_in(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number from low to high (no upper bound when None)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < low or (high is not None and value > high):
            bounds = f"{low}..{high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"must be {bounds}, not {value}")
        return value

    return parse


def positive_float(text: str) -> float:
    """An argparse type: a finite number above zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text}")
    return value
