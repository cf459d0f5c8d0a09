"""(placeholder while the command is written)"""

from __future__ import annotations

import argparse

from tools.operations.context import Context

SUMMARY = "status"


def configure(parser: argparse.ArgumentParser) -> None:
    pass


def main(args: argparse.Namespace, ctx: Context) -> int:
    raise NotImplementedError
