"""Judges every key once a campaign has drained, against the documented merge rule.

What each region's applications did is read back from the region's own table stream, which
holds every write made there with the version it was given: the application's stamp, or the
sender's fresh stamp on a write that carried no newer version (the writer contract). Writes the
replicator made carry the peer's region and are left out. A delete is one the application log
says it made; its version is what the sender derives from its record: the record's creation
time (whole seconds from DynamoDB Streams, the millisecond from Kinesis capture), and at least
a millisecond above every version the item had in that region before it (a write the delete
removed before the sender could stamp it outranked them too).

For each key the winner is the highest of those versions. The key passes when both regions
hold exactly the winner (or, when a delete won, nothing). A key whose item outlives a delete
the applications made later in true time passes only when a documented window explains it:
- the delete's version is in whole seconds (DynamoDB Streams capture) and the write was made
  within that second;
- the write was stamped by an application clock running ahead;
- the write carried no newer version, so the sender versioned it when it stamped it, later.
And the other way: such a write, deleted by an application after it was made, may stay deleted
though the sender's stamp outranks the delete (the delete reached it first). Anything else is a
violation, named.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chaos.workload import Write, without_version
from deployment.tables import scan_all
from emulator.capture import DYNAMODB_STREAMS
from emulator.stepped import Node, TwoRegions
from emulator.stream_sources import dynamodb_stream_records
from replication.versions import UNVERSIONED, Version, of_image

DELETES = ("delete", "stamped delete")
WINDOW_WHOLE_SECONDS = "delete versioned in whole seconds (DynamoDB Streams)"
WINDOW_CLOCK_AHEAD = "write stamped by an application clock ahead"
WINDOW_STAMPED_LATER = "write without a newer version, versioned when the sender stamped it"
WINDOW_TIE = "equal versions, each region keeping what it held first"
WINDOW_DELETE_STOOD = "write without a newer version, deleted later before the sender stamped it"


@dataclass(frozen=True)
class Candidate:
    version: Version
    region: str
    true_ms: int
    content: dict[str, Any] | None  # None: a delete
    by_application: bool  # False: the sender's own stamp


@dataclass
class Verdict:
    keys: int = 0
    violations: list[str] = field(default_factory=list)
    windows: Counter = field(default_factory=Counter)
    divergent: int = 0  # keys the two regions hold differently

    @property
    def passed(self) -> bool:
        return not self.violations


def judge(regions: TwoRegions, log: list[Write], capture: str) -> Verdict:
    candidates: dict[str, list[Candidate]] = {}
    for node in regions.nodes.values():
        for key, candidate in _candidates(node, log, capture):
            candidates.setdefault(key, []).append(candidate)
    tables = {
        name: {i["PK"]["S"]: i for i in scan_all(node.client("dynamodb"), node.table)}
        for name, node in regions.nodes.items()
    }
    verdict = Verdict()
    keys = set(candidates) | {k for items in tables.values() for k in items}
    for key in sorted(keys):
        verdict.keys += 1
        held = [items.get(key) for items in tables.values()]
        if held[0] != held[1]:
            verdict.divergent += 1
            verdict.violations.append(f"{key}: the regions differ: {held[0]} / {held[1]}")
            continue
        _judge_key(verdict, key, held[0], candidates.get(key, []), log, capture)
    return verdict


def _judge_key(verdict, key, item, candidates, log, capture) -> None:
    if not candidates:
        if item is not None:
            verdict.violations.append(f"{key}: held, but no application ever wrote it")
        return
    winner = max(candidates, key=lambda c: c.version)
    tied = [c for c in candidates if c.version == winner.version]
    if len(tied) > 1 and item is not None:
        # The merge rule can't order equal versions: each region keeps what it held first.
        # (Distinct events get equal versions here only because the emulator's clock stands
        # still while the pipeline drains.)
        winner = next((c for c in tied if c.content == without_version(item)), winner)
        if winner.content is not None:
            verdict.windows[WINDOW_TIE] += 1
    if winner.content is None:
        if item is not None:
            verdict.violations.append(
                f"{key}: a delete won ({tuple(winner.version)}) but the item is held: {item}"
            )
        return
    if item is None:
        if _deleted_after_restamped_write(winner, log, key):
            verdict.windows[WINDOW_DELETE_STOOD] += 1
        else:
            verdict.violations.append(f"{key}: lost: the winner {tuple(winner.version)} is missing")
        return
    if of_image(item) != winner.version or without_version(item) != winner.content:
        verdict.violations.append(
            f"{key}: holds {tuple(of_image(item) or UNVERSIONED)} {without_version(item)}, "
            f"not the winner {tuple(winner.version)} {winner.content}"
        )
        return
    # Held, as the rule says. Did an application delete it after that write, in true time?
    origin = _origin(winner, log, key)
    if origin is None:
        verdict.violations.append(f"{key}: holds {winner.content}, which no application wrote")
        return
    later = [w for w in log if w.key == key and w.op in DELETES and w.true_ms > origin.true_ms]
    if later:
        window = _window(winner, origin, later[0], capture)
        if window is None:
            verdict.violations.append(
                f"{key}: deleted at {later[0].true_ms} in {later[0].region} after the write at "
                f"{origin.true_ms} in {origin.region}, and back with {tuple(winner.version)}"
            )
        else:
            verdict.windows[window] += 1


def _origin(winner: Candidate, log: list[Write], key: str) -> Write | None:
    """The application write whose content the winner holds (each write's value is unique)."""
    written = [w for w in log if w.key == key and w.content == winner.content]
    return min(written, key=lambda w: w.true_ms) if written else None


def _deleted_after_restamped_write(winner: Candidate, log: list[Write], key: str) -> bool:
    """The winner is the sender's stamp on a write that carried no newer version, and an
    application deleted the item after that write, in true time: the delete stands if it
    reached the item before the stamp did (the sender won't put back a write gone by a later
    delete), and loses if the stamp came first. Either way both regions agree."""
    origin = _origin(winner, log, key)
    if winner.by_application or origin is None:
        return False
    return any(w.key == key and w.op in DELETES and w.true_ms > origin.true_ms for w in log)


def _window(winner: Candidate, origin: Write, delete: Write, capture: str) -> str | None:
    truncated = delete.true_ms // 1000 * 1000
    if capture == DYNAMODB_STREAMS and truncated <= winner.version.timestamp < delete.true_ms:
        return WINDOW_WHOLE_SECONDS
    ahead = origin.stamp is not None and origin.stamp.timestamp > origin.true_ms
    if ahead and winner.by_application and winner.version.timestamp >= delete.true_ms:
        return WINDOW_CLOCK_AHEAD
    if not winner.by_application:
        return WINDOW_STAMPED_LATER
    return None


def _candidates(node: Node, log: list[Write], capture: str):
    """(key, candidate) for each write and application delete in the region's table stream."""
    region = node.name
    deletes = {(w.key, w.true_ms) for w in log if w.region == region and w.op in DELETES}
    stamps = {(w.key, w.true_ms) for w in log if w.region == region and w.stamp is not None}
    held: dict[str, Version] = {}  # key -> the highest version the region's item has had
    streams, arn = node.client("dynamodbstreams"), node.region.stream_arns[node.table]
    for _, raw in dynamodb_stream_records(streams, arn):
        ddb = raw["dynamodb"]
        key = ddb["Keys"]["PK"]["S"]
        created = _epoch_ms(ddb["ApproximateCreationDateTime"])
        old = of_image(ddb.get("OldImage")) or UNVERSIONED
        floor = max(old, held.get(key, UNVERSIONED), of_image(ddb.get("NewImage")) or UNVERSIONED)
        held[key] = floor
        if raw["eventName"] == "REMOVE":
            if (key, created) not in deletes:
                continue  # the functions' own deletes: a replicated delete, or an undoing
            # A delete outranks whatever the item held here before it: its old version, and
            # what a write it removed before the sender stamped it had overwritten.
            at = created if capture != DYNAMODB_STREAMS else created // 1000 * 1000
            version = Version(max(at, floor.timestamp + 1), region)
            yield key, Candidate(version, region, created, None, True)
            continue
        new = ddb["NewImage"]
        version = of_image(new)
        if version is None or version.region != region or version == old:
            continue  # unversioned, the replicator's, or not versioned anew
        by_application = (key, created) in stamps
        yield key, Candidate(version, region, created, without_version(new), by_application)


def _epoch_ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)
