"""The load generator: realistic, stamped items written to a replicated table, fast or paced.

Everything `load_items.py` does lives here, importable and testable without the CLI:

    client = make_client("cn-north-1")
    keys = describe_key_schema(client, "user-cn")
    factory = ItemFactory(keys, profile="user", seed=7)
    result = load(client, "user-cn", "cn-north-1", 1000, 25, 4, None, factory)
    record_loaded(client, "replicator_stats", "user-cn", result.written)

Items are generated in DynamoDB's typed form from the table's own key schema (any hash or
hash and range key, of type S, N or B) and stamped per the application-writer contract
(`replication.stamping.stamp`) just before each write, so the sender ships them as they are.
"""

from __future__ import annotations

import base64
import datetime as dt
import random
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.types import TypeSerializer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ProfileNotFound
from faker import Faker

from deployment.names import CHINA, GLOBAL, RegionNames, region_names
from deployment.tables import LOADER_STATS_PREFIX
from replication.stamping import stamp
from replication.versions import MILLISECONDS, now_ms
from tools import cli

MAX_BATCH = 25  # BatchWriteItem's limit
REGION_ALIASES = {"cn": CHINA, "sg": GLOBAL}
# What a region name looks like: cn-north-1, ap-southeast-1, us-gov-west-1, eu-central-2.
REGION_NAME = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
THROTTLING_CODES = frozenset(
    {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"}
)
STATS_KEY_ATTR = "PK"  # replicator_stats' partition key (S), as replication/stats.py writes it


# -- errors --------------------------------------------------------------------------------


class LoaderError(Exception):
    """A problem the user can fix, reported as one line."""


class UsageError(cli.UsageError, LoaderError):
    """A bad argument: an unknown region alias, a missing table name."""


class LoadError(LoaderError):
    """A load that stopped early; `written` items were written before it did."""

    def __init__(self, message: str, written: int = 0):
        super().__init__(message)
        self.written = written


class LoadInterrupted(LoadError):
    """The user pressed Ctrl-C; the workers finished their current batch and stopped."""


# -- regions, tables and the client ------------------------------------------------------


def resolve_region(value: str) -> str:
    """`cn` or `sg`, or a full region name, as a region name."""
    region = REGION_ALIASES.get(value.strip().lower(), value.strip())
    if not REGION_NAME.match(region):
        aliases = ", ".join(REGION_ALIASES)
        raise UsageError(
            f"unknown region {value!r}: use {aliases} or a region name such as cn-north-1"
        )
    return region


def default_table(region: str, names: Mapping[str, RegionNames] | None = None) -> str:
    """The region's first replicated table in defaults.json."""
    names = region_names() if names is None else names
    if region not in names or not names[region].tables:
        raise UsageError(f"defaults.json names no table for {region}: pass -t TABLE")
    return names[region].tables[0]


def default_stats_table(region: str, names: Mapping[str, RegionNames] | None = None) -> str:
    """The region's stats table in defaults.json; for another region, the name all share."""
    names = region_names() if names is None else names
    if region in names:
        return names[region].stats_table
    shared = {n.stats_table for n in names.values()}
    if len(shared) != 1:
        raise UsageError(f"defaults.json names no stats table for {region}: pass --stats-table")
    return shared.pop()


def make_client(
    region: str,
    profile: str | None = None,
    endpoint_url: str | None = None,
    concurrency: int = 4,
    max_attempts: int = 5,
) -> Any:
    """A DynamoDB client with standard-mode retries and a connection per worker thread."""
    try:
        session = boto3.Session(profile_name=profile)
    except ProfileNotFound as error:
        raise LoaderError(f"AWS profile {profile!r} not found") from error
    config = Config(
        region_name=region,
        max_pool_connections=max(10, concurrency + 2),
        retries={"mode": "standard", "max_attempts": max_attempts},
    )
    return session.client("dynamodb", endpoint_url=endpoint_url, config=config)


@dataclass(frozen=True)
class KeyAttribute:
    name: str
    type: str  # "S", "N" or "B"
    role: str  # "HASH" or "RANGE"

    def __str__(self) -> str:
        return f"{self.name} ({self.type})"


def describe_key_schema(client: Any, table: str) -> tuple[KeyAttribute, ...]:
    """The table's key attributes from DescribeTable, hash key first."""
    try:
        description = client.describe_table(TableName=table)["Table"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            raise LoaderError(f"table {table} not found in {client.meta.region_name}") from error
        raise
    types = {a["AttributeName"]: a["AttributeType"] for a in description["AttributeDefinitions"]}
    keys = [
        KeyAttribute(k["AttributeName"], types[k["AttributeName"]], k["KeyType"])
        for k in description["KeySchema"]
    ]
    return tuple(sorted(keys, key=lambda k: k.role != "HASH"))


# An attribute every generated item carries, so a table's own items are told from a load's.
LOADER_MARK = "loaded_by_load_items"
LIVE_SAMPLE = 25  # items read to tell whether a table is in use


def refuse_live_table(client: Any, table: str) -> None:
    """Fail if the table holds an item the load generator didn't write: fake rows don't
    belong among an application's (a first load goes into a scratch table)."""
    page = client.scan(TableName=table, Limit=LIVE_SAMPLE, ConsistentRead=True)
    foreign = [item for item in page.get("Items", []) if LOADER_MARK not in item]
    if foreign:
        raise LoaderError(
            f"{table} holds items load_items.py did not write, so it may be an application's: "
            "load a scratch table (-t), or pass --into-live-table to write fake items into it"
        )


def check_stats_table(client: Any, stats_table: str) -> None:
    """Fail before loading, not after, if the stats table is missing or keyed differently."""
    keys = describe_key_schema(client, stats_table)
    if keys != (KeyAttribute(STATS_KEY_ATTR, "S", "HASH"),):
        schema = ", ".join(map(str, keys))
        raise LoaderError(
            f"stats table {stats_table} is keyed by {schema}, not {STATS_KEY_ATTR} (S)"
        )


# -- items ---------------------------------------------------------------------------------

Profile = Callable[[Faker], dict[str, Any]]
_EPOCH_START = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
_EPOCH_END = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
_CENT = Decimal("0.01")
_CURRENCIES = {"CN": "CNY", "SG": "SGD", "US": "USD"}


def _instant(fake: Faker) -> str:
    # Fixed bounds, not "-3y": the same seed must give the same items on any day.
    seconds = fake.random.uniform(0, (_EPOCH_END - _EPOCH_START).total_seconds())
    moment = _EPOCH_START + dt.timedelta(seconds=seconds)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _address(fake: Faker) -> dict[str, str]:
    return {
        "street": fake.street_address(),
        "city": fake.city(),
        "postcode": fake.postcode(),
        "country": fake.current_country_code(),
    }


def user_profile(fake: Faker) -> dict[str, Any]:
    """A user account: strings, a map, a string set, a number and a boolean."""
    return {
        "name": fake.name(),
        "email": fake.email(),
        "username": fake.user_name(),
        "phone": fake.phone_number(),
        "address": _address(fake),
        "birthday": fake.date_between(dt.date(1950, 1, 1), dt.date(2007, 12, 31)).isoformat(),
        "created_at": _instant(fake),
        "active": fake.boolean(chance_of_getting_true=85),
        "login_count": fake.random_int(0, 5000),
        "interests": set(fake.words(nb=fake.random_int(1, 4), unique=True)),
        "bio": fake.sentence(nb_words=12),
    }


def order_profile(fake: Faker) -> dict[str, Any]:
    """An order: lines as a list of maps, money as exact Numbers that add up."""
    lines = []
    for _ in range(fake.random_int(1, 5)):
        quantity = fake.random_int(1, 5)
        unit_price = Decimal(fake.random_int(199, 49_999)) / 100
        lines.append(
            {
                "sku": fake.bothify("SKU-####-??").upper(),
                "description": " ".join(fake.words(nb=3)),
                "quantity": quantity,
                "unit_price": unit_price,
                "line_total": unit_price * quantity,
            }
        )
    subtotal = sum((line["line_total"] for line in lines), Decimal("0.00"))
    tax = (subtotal * Decimal("0.09")).quantize(_CENT)
    shipping = Decimal("0.00") if subtotal >= 100 else Decimal("9.90")
    return {
        "customer_name": fake.name(),
        "customer_email": fake.email(),
        "status": fake.random_element(["pending", "paid", "shipped", "delivered", "cancelled"]),
        "currency": _CURRENCIES.get(fake.current_country_code(), "USD"),
        "placed_at": _instant(fake),
        "lines": lines,
        "item_count": sum(line["quantity"] for line in lines),
        "subtotal": subtotal,
        "tax": tax,
        "shipping": shipping,
        "total": subtotal + tax + shipping,
        "shipping_address": _address(fake),
        "gift": fake.boolean(chance_of_getting_true=10),
    }


def minimal_profile(fake: Faker) -> dict[str, Any]:
    """One small string attribute, for raw write throughput."""
    return {"note": fake.word()}


PROFILES: dict[str, Profile] = {
    "user": user_profile,
    "order": order_profile,
    "minimal": minimal_profile,
}


def _key_value(type_: str, rng: random.Random) -> dict[str, Any]:
    if type_ == "S":
        return {"S": str(uuid.UUID(int=rng.getrandbits(128), version=4))}
    if type_ == "N":
        return {"N": str(rng.randrange(1, 2**53))}  # exact even where JSON means a double
    if type_ == "B":
        return {"B": rng.randbytes(16)}
    raise ValueError(f"unsupported key type {type_!r}")


class ItemFactory:
    """Item `i` of a load, in DynamoDB's typed form, unstamped.

    Each item is drawn from its own random stream, seeded by (seed, i), so item `i` is the
    same whichever worker builds it and in whatever order: a seed reproduces every item of
    a load (and so writes the same keys again). Without a seed, one is picked at random and
    kept in `seed`, so a load can still be repeated. Thread-safe.
    """

    def __init__(
        self,
        keys: Sequence[KeyAttribute],
        profile: str = "user",
        seed: int | None = None,
        locale: str = "en_US",
    ):
        if not keys:
            raise ValueError("a table has at least a hash key")
        if profile not in PROFILES:
            raise ValueError(f"unknown profile {profile!r}; choose from {', '.join(PROFILES)}")
        for key in keys:
            _key_value(key.type, random.Random(0))  # reject an unsupported type up front
        self.keys = tuple(keys)
        self.profile = profile
        self.seed = secrets.randbits(63) if seed is None else seed
        self.locale = locale
        self._attributes = PROFILES[profile]
        self._serializer = TypeSerializer()
        self._local = threading.local()

    def _faker(self) -> Faker:
        fake = getattr(self._local, "fake", None)
        if fake is None:
            fake = self._local.fake = Faker(self.locale)
        return fake

    def item(self, index: int) -> dict[str, Any]:
        rng = random.Random(f"{self.seed}:{index}")
        fake = self._faker()
        fake.random = rng
        key = {k.name: _key_value(k.type, rng) for k in self.keys}
        attributes = {
            name: self._serializer.serialize(value)
            for name, value in self._attributes(fake).items()
        }
        # The key first, for reading; it wins over a profile attribute of the same name. The
        # mark tells the load's items from an application's (see refuse_live_table).
        return {
            **key,
            **{n: v for n, v in attributes.items() if n not in key},
            LOADER_MARK: {"S": f"seed {self.seed}"},
        }

    def items(self, start: int, count: int) -> list[dict[str, Any]]:
        return [self.item(i) for i in range(start, start + count)]


def locale_for(region: str) -> str:
    """Chinese names and addresses in China, English elsewhere."""
    return "zh_CN" if region.startswith("cn-") else "en_US"


def item_to_json(item: Mapping[str, Any]) -> Any:
    """A typed item as JSON-ready data: the wire format's form, binary as base64."""

    def convert(value: Any) -> Any:
        if isinstance(value, bytes | bytearray):
            return base64.b64encode(value).decode()
        if isinstance(value, Mapping):
            return {k: convert(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [convert(v) for v in value]
        return value

    return convert(item)


# -- pacing and retries --------------------------------------------------------------------


class RateLimiter:
    """A token bucket shared by the workers: at most `burst + rate * t` items in any t seconds.

    `acquire(n)` reserves n tokens at once and sleeps off any debt outside the lock, so
    threads queue up in the order they asked and none is starved.
    """

    def __init__(
        self,
        rate: float,
        burst: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Any] = time.sleep,
    ):
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = burst
        self._last = clock()
        self._lock = threading.Lock()

    def acquire(self, n: int = 1) -> float:
        """Take n tokens, waiting until they are due; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= n
            delay = max(0.0, -self._tokens / self.rate)
        if delay:
            self._sleep(delay)
        return delay


def backoff_delay(attempt: int, base: float = 0.05, cap: float = 5.0, rng: Any = random) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
    return rng.uniform(0, min(cap, base * 2**attempt))


def write_batch(
    client: Any,
    table: str,
    region: str,
    items: Sequence[dict[str, Any]],
    *,
    max_attempts: int = 10,
    sleep: Callable[[float], Any] = time.sleep,
    on_written: Callable[[int], None] | None = None,
    stop: threading.Event | None = None,
    unit: str = MILLISECONDS,
) -> int:
    """Write up to 25 items with one BatchWriteItem, retrying what DynamoDB throttles.

    UnprocessedItems and throttling errors are retried with jittered exponential backoff,
    at most `max_attempts` calls in all; each attempt stamps its items afresh, at the time
    it writes them. Returns the number written; stops early, quietly, if `stop` is set.
    """
    pending = list(items)
    written = 0
    for attempt in range(max_attempts):
        if attempt:
            sleep(backoff_delay(attempt - 1))
            if stop is not None and stop.is_set():
                return written
        now = now_ms()
        requests = [
            {"PutRequest": {"Item": stamp(item, region, now, typed=True, unit=unit)}}
            for item in pending
        ]
        try:
            response = client.batch_write_item(RequestItems={table: requests})
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in THROTTLING_CODES:
                continue
            raise LoadError(f"BatchWriteItem on {table} failed: {error}") from error
        except BotoCoreError as error:
            raise LoadError(f"BatchWriteItem on {table} failed: {error}") from error
        unprocessed = response.get("UnprocessedItems", {}).get(table, [])
        done = len(pending) - len(unprocessed)
        written += done
        if on_written is not None and done:
            on_written(done)
        if not unprocessed:
            return written
        pending = [request["PutRequest"]["Item"] for request in unprocessed]
    raise LoadError(
        f"{len(pending)} items still throttled by {table} after {max_attempts} attempts; "
        "raise the table's write capacity or lower --rate"
    )


# -- the load ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadResult:
    table: str
    region: str
    written: int
    seconds: float

    @property
    def items_per_second(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0


def load(
    client: Any,
    table: str,
    region: str,
    count: int,
    batch_size: int,
    concurrency: int,
    rate: float | None,
    factory: ItemFactory,
    progress: Callable[[int], None] | None = None,
    *,
    max_attempts: int = 10,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Any] | None = None,
    unit: str = MILLISECONDS,
) -> LoadResult:
    """Write `count` new items, `batch_size` per call, from `concurrency` threads.

    `rate` caps the whole load in items per second (None: as fast as the table takes them).
    `progress(n)` is called from the worker threads as each n items land. On a failure the
    other workers finish their current batch, and LoadError says how many items were written.
    `clock` and `sleep` time the load and its waits (tests pass simulated ones). Items are
    stamped in `unit`, the deployment's VERSION_UNIT.
    """
    if not 1 <= batch_size <= MAX_BATCH:
        raise ValueError(f"batch_size must be 1..{MAX_BATCH}")
    if concurrency < 1 or count < 0:
        raise ValueError("concurrency must be at least 1 and count not negative")
    stop = threading.Event()
    pause = sleep if sleep is not None else stop.wait
    limiter = (
        RateLimiter(rate, burst=batch_size, clock=clock, sleep=pause) if rate is not None else None
    )
    batches = -(-count // batch_size)
    lock = threading.Lock()
    state = {"next": 0, "written": 0}

    def written(n: int) -> None:
        with lock:
            state["written"] += n
        if progress is not None:
            progress(n)

    def next_batch() -> int | None:
        with lock:
            if state["next"] >= batches:
                return None
            state["next"] += 1
            return state["next"] - 1

    def worker() -> None:
        while not stop.is_set() and (batch := next_batch()) is not None:
            start = batch * batch_size
            items = factory.items(start, min(batch_size, count - start))
            if limiter is not None:
                limiter.acquire(len(items))
                if stop.is_set():
                    return
            write_batch(
                client,
                table,
                region,
                items,
                max_attempts=max_attempts,
                sleep=pause,
                on_written=written,
                stop=stop,
                unit=unit,
            )

    started = clock()
    failure: BaseException | None = None
    with ThreadPoolExecutor(max(1, min(concurrency, batches)), "loader") as pool:
        futures = [pool.submit(worker) for _ in range(max(1, min(concurrency, batches)))]
        try:
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failure = next((f.exception() for f in done if f.exception()), None)
        except BaseException as error:  # Ctrl-C while waiting
            failure = error
        if failure is not None:
            stop.set()
    total = state["written"]
    if isinstance(failure, KeyboardInterrupt):
        raise LoadInterrupted("interrupted", total) from None
    if isinstance(failure, LoadError):
        failure.written = total
        raise failure
    if failure is not None:
        raise failure
    return LoadResult(table, region, total, clock() - started)


@dataclass(frozen=True)
class DryRun:
    table: str
    region: str
    count: int
    sample: dict[str, Any]  # item 0, stamped as it would be written
    seconds: float  # to generate all the items


def dry_run(
    table: str,
    region: str,
    count: int,
    factory: ItemFactory,
    progress: Callable[[int], None] | None = None,
    chunk: int = 100,
    unit: str = MILLISECONDS,
) -> DryRun:
    """Generate every item a load would write, and write none."""
    started = time.monotonic()
    for start in range(0, count, chunk):
        generated = factory.items(start, min(chunk, count - start))
        if progress is not None:
            progress(len(generated))
    sample = stamp(factory.item(0), region, typed=True, unit=unit) if count else {}
    return DryRun(table, region, count, sample, time.monotonic() - started)


# -- the loader's counter ------------------------------------------------------------------


def stats_key(table: str) -> dict[str, Any]:
    return {STATS_KEY_ATTR: {"S": f"{LOADER_STATS_PREFIX}{table}"}}


def record_loaded(
    client: Any, stats_table: str, table: str, count: int, now: int | None = None
) -> int:
    """Add `count` to the table's `loaded` counter in one atomic UpdateItem; the new total.

    The item (PK `loader_stats#<table>`) sits beside the replicator's counters, so operators
    can compare what was loaded into a region with what was replicated out of it.
    """
    response = client.update_item(
        TableName=stats_table,
        Key=stats_key(table),
        UpdateExpression="ADD #loaded :n SET #at = :now",
        ExpressionAttributeNames={"#loaded": "loaded", "#at": "last_loaded_at"},
        ExpressionAttributeValues={
            ":n": {"N": str(count)},
            ":now": {"N": str(now_ms() if now is None else now)},
        },
        ReturnValues="UPDATED_NEW",
    )
    return int(response["Attributes"]["loaded"]["N"])
