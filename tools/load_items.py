"""Write realistic, stamped items into a replicated DynamoDB table, as an application would.

    python tools/load_items.py -n 1000 -r cn
    python tools/load_items.py -n 50000 -r sg -c 16 --rate 500 --faker-profile order --json

Progress and logs go to stderr; the summary (or, with --dry-run, a sample item) to stdout.
The logic lives in tools/loader.py.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from replication.versions import MILLISECONDS, VERSION_UNITS
from tools import cli, loader

PROG = "load_items.py"


def build_parser() -> argparse.ArgumentParser:
    parser = cli.OneLineParser(
        prog=PROG,
        description="Write COUNT generated items, stamped per the application-writer "
        "contract, into a replicated table, then add COUNT to its loader_stats counter.",
    )
    add = parser.add_argument
    add("-n", "--count", type=cli.int_in(1), required=True, help="number of items to write")
    add(
        "-r",
        "--region",
        required=True,
        help="cn, sg, or a region name (cn-north-1); also the region stamped on the items",
    )
    add("-t", "--table", help="table to load (default: the region's first in defaults.json)")
    add(
        "-b",
        "--batch-size",
        type=cli.int_in(1, loader.MAX_BATCH),
        default=loader.MAX_BATCH,
        metavar="BATCH",
        help="items per BatchWriteItem, 1..25 (default: %(default)s)",
    )
    add("-c", "--concurrency", type=cli.int_in(1), default=4, help="worker threads (default: 4)")
    add(
        "--rate",
        type=cli.positive_float,
        metavar="ITEMS_PER_SECOND",
        help="cap on the whole load's write rate (default: no cap)",
    )
    add("--endpoint-url", metavar="URL", help="DynamoDB endpoint, e.g. a local moto server")
    add("--profile", metavar="NAME", help="AWS profile to use")
    add(
        "--faker-profile",
        choices=list(loader.PROFILES),
        default="user",
        help="what the items look like (default: %(default)s)",
    )
    add(
        "--seed",
        type=int,
        metavar="N",
        help="make the items reproducible (the same seed writes the same keys again)",
    )
    stats = parser.add_mutually_exclusive_group()
    stats.add_argument(
        "--stats-table",
        metavar="NAME",
        help="table holding the loaded counter (default: the region's, from defaults.json)",
    )
    stats.add_argument("--no-stats", action="store_true", help="don't update the loaded counter")
    add(
        "--version-unit",
        choices=VERSION_UNITS,
        default=MILLISECONDS,
        help="the deployment's version_unit: stamp in epoch milliseconds or seconds "
        "(default: %(default)s)",
    )
    add(
        "--into-live-table",
        action="store_true",
        help="write even if the table holds items this tool didn't write (an application's)",
    )
    add("--dry-run", action="store_true", help="generate the items and show one; write nothing")
    add("--quiet", action="store_true", help="no progress bar or logs on stderr")
    add("--json", action="store_true", help="print the summary as a JSON object")
    return parser


def main(argv: list[str] | None = None) -> int:
    stderr = Console(stderr=True)
    try:
        return _run(build_parser().parse_args(argv), stderr)
    except cli.UsageError as error:
        return cli.fail(PROG, error, 2)
    except loader.LoadInterrupted as error:
        return cli.fail(PROG, error, 130)
    except (loader.LoaderError, ClientError, BotoCoreError) as error:
        return cli.fail(PROG, error, 1)
    except KeyboardInterrupt:
        return cli.fail(PROG, "interrupted", 130)


def _run(args: argparse.Namespace, stderr: Console) -> int:
    region = loader.resolve_region(args.region)
    table = args.table or loader.default_table(region)
    stats_table = None if args.no_stats else args.stats_table or loader.default_stats_table(region)

    def log(message: str) -> None:
        if not args.quiet:
            stderr.print(message, markup=False, highlight=False, soft_wrap=True)

    client = loader.make_client(region, args.profile, args.endpoint_url, args.concurrency)
    keys = loader.describe_key_schema(client, table)
    if not args.dry_run and not args.into_live_table:
        loader.refuse_live_table(client, table)
    if stats_table is not None:
        loader.check_stats_table(client, stats_table)
    factory = loader.ItemFactory(keys, args.faker_profile, args.seed, loader.locale_for(region))
    show_progress = not args.quiet and stderr.is_terminal
    described = f"key {', '.join(map(str, keys))}, profile {factory.profile}, seed {factory.seed}"

    if args.dry_run:
        log(f"dry run: generating {args.count} items for {table} in {region} ({described})")
        with _progress(stderr, show_progress, args.count, "generating") as advance:
            plan = loader.dry_run(
                table, region, args.count, factory, advance, unit=args.version_unit
            )
        log(f"generated {plan.count} items in {plan.seconds:.2f} s; wrote nothing")
        _print_dry_run(args, plan, keys, factory)
        return 0

    rate = f"at most {args.rate:g} items/s" if args.rate else "no rate cap"
    log(
        f"loading {args.count} items into {table} in {region} ({described}; batches of "
        f"{args.batch_size}, {args.concurrency} workers, {rate})"
    )
    try:
        with _progress(stderr, show_progress, args.count, f"loading {table}") as advance:
            result = loader.load(
                client,
                table,
                region,
                args.count,
                args.batch_size,
                args.concurrency,
                args.rate,
                factory,
                advance,
                unit=args.version_unit,
            )
    except loader.LoadError as error:
        # What did land will be replicated: count it, so the counters still compare.
        if stats_table is not None and error.written:
            loader.record_loaded(client, stats_table, table, error.written)
        message = f"{error} (wrote {error.written} of {args.count} items)"
        raise type(error)(message, error.written) from error

    total = None
    if stats_table is not None:
        total = loader.record_loaded(client, stats_table, table, result.written)
        key = loader.stats_key(table)[loader.STATS_KEY_ATTR]["S"]
        log(f"{stats_table} {key}: loaded = {total}")
    _print_result(args, result, factory, stats_table, total)
    return 0


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = f"{task.speed:,.0f} items/s" if task.speed else ""
        return Text(speed, style="progress.data.speed")


@contextmanager
def _progress(
    console: Console, enabled: bool, total: int, description: str
) -> Iterator[Callable[[int], None] | None]:
    if not enabled:
        yield None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        _RateColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)


def _print_result(
    args: argparse.Namespace,
    result: loader.LoadResult,
    factory: loader.ItemFactory,
    stats_table: str | None,
    total: int | None,
) -> None:
    if args.json:
        print(
            json.dumps(
                {
                    "region": result.region,
                    "table": result.table,
                    "items_written": result.written,
                    "seconds": round(result.seconds, 3),
                    "items_per_second": round(result.items_per_second, 1),
                    "profile": factory.profile,
                    "seed": factory.seed,
                    "stats_table": stats_table,
                    "loaded_total": total,
                }
            )
        )
        return
    print(
        f"wrote {result.written} items to {result.table} in {result.region} "
        f"in {result.seconds:.2f} s ({result.items_per_second:.1f} items/s)"
    )


def _print_dry_run(
    args: argparse.Namespace,
    plan: loader.DryRun,
    keys: tuple[loader.KeyAttribute, ...],
    factory: loader.ItemFactory,
) -> None:
    sample = loader.item_to_json(plan.sample)
    if args.json:
        summary = {
            "dry_run": True,
            "region": plan.region,
            "table": plan.table,
            "items_to_write": plan.count,
            "key_schema": [{"name": k.name, "type": k.type, "role": k.role} for k in keys],
            "profile": factory.profile,
            "seed": factory.seed,
            "sample_item": sample,
        }
        print(json.dumps(summary, ensure_ascii=False))
        return
    print(f"dry run: would write {plan.count} items to {plan.table} in {plan.region}; sample item:")
    print(json.dumps(sample, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    raise SystemExit(main())
