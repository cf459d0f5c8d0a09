"""Operate a running replication: verify (and repair), backfill, redrive, status.

    python tools/ops.py status   --region cn-north-1 --profile china --peer-profile global
    python tools/ops.py verify   --region cn-north-1 --profile china --peer-profile global --repair
    python tools/ops.py backfill --region cn-north-1 --profile china --peer-profile global
    python tools/ops.py redrive  --region cn-north-1 --profile china --function replicator

Each command works on one region (--region, --profile, --endpoint-url) and, where it needs the
other side, its peer (--peer-region, by default the one the region's functions name,
--peer-profile, --peer-endpoint-url). Tables, table maps, queues and streams are read from the
deployed functions' configuration (--sender-function, --replicator-function: their names in both
regions), so tables set in terraform.tfvars are seen as deployed. Results go to stdout (--json
for a machine-readable object), progress and logs to stderr (--quiet silences them). --dry-run
changes nothing. The logic lives in tools/operations/.
"""

from __future__ import annotations

import argparse

from deployment.names import FunctionNames, function_names
from tools import cli
from tools.operations import backfill, redrive, status, verify
from tools.operations.context import Context
from tools.operations.sides import OperationError, open_side

PROG = "ops.py"
COMMANDS = {
    "status": status,
    "verify": verify,
    "backfill": backfill,
    "redrive": redrive,
}


def common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    add = common.add_argument
    add("--region", required=True, help="the region to work on, e.g. cn-north-1")
    add("--profile", metavar="NAME", help="AWS profile of that region's account")
    add("--endpoint-url", metavar="URL", help="that region's AWS endpoint (the local emulator)")
    add("--peer-region", help="the other side (default: the peer the region's functions name)")
    add("--peer-profile", metavar="NAME", help="AWS profile of the peer's account")
    add("--peer-endpoint-url", metavar="URL", help="the peer's AWS endpoint")
    defaults = function_names()
    add(
        "--sender-function",
        default=defaults.sender,
        metavar="NAME",
        help="the sender's name in both regions (default: %(default)s)",
    )
    add(
        "--replicator-function",
        default=defaults.replicator,
        metavar="NAME",
        help="the replicator's name in both regions (default: %(default)s)",
    )
    add("--dry-run", action="store_true", help="report what would be done; change nothing")
    add("--quiet", action="store_true", help="no progress or logs on stderr")
    add("--json", action="store_true", help="print the result as JSON")
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = cli.OneLineParser(
        prog=PROG, description="Operate DynamoDB replication across the partition border."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parent = common_options()
    for name, module in COMMANDS.items():
        # Subparsers are OneLineParsers too (argparse makes them of the parent's class).
        sub = commands.add_parser(
            name, parents=[parent], help=module.SUMMARY, description=module.SUMMARY
        )
        module.configure(sub)
    return parser


def make_context(args: argparse.Namespace) -> Context:
    functions = FunctionNames(args.sender_function, args.replicator_function)
    here = open_side(args.region, args.profile, args.endpoint_url, functions)
    peer_region = args.peer_region or here.names.peer_region
    if peer_region == args.region:
        raise cli.UsageError(f"--peer-region must differ from --region ({args.region})")
    peer = open_side(peer_region, args.peer_profile, args.peer_endpoint_url, functions)
    return Context(here, peer, dry_run=args.dry_run, quiet=args.quiet, json=args.json)


def main(argv: list[str] | None = None) -> int:
    def command() -> int:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command].main(args, make_context(args))

    return cli.run(PROG, command, failures=(OperationError,))


if __name__ == "__main__":
    raise SystemExit(main())
