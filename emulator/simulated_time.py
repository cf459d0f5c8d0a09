"""A scenario's one true time, for stepped runs that replay and that cover days in seconds.

Everything that reads time in a stepped scenario reads this: both regions' clocks (plus their
skew), the event source mappings, the capture pumps, stream retention, and (inside
`simulated()`) the creation times moto gives stream records. It moves only when the scenario
moves it, so a seed replays, and a scenario can jump hours between two steps.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from unittest import mock

# 2027-01-15: a fixed start, so record times and versions replay exactly.
DEFAULT_START_MS = 1_800_000_000_000


class SimulatedTime:
    """Epoch milliseconds, moved by hand (`time.ms += ...`)."""

    def __init__(self, start_ms: int = DEFAULT_START_MS):
        self.ms = start_ms

    def __call__(self) -> int:
        return self.ms

    def utcnow(self) -> datetime:
        """As moto's own utcnow: naive, in UTC."""
        return datetime.fromtimestamp(self.ms / 1000, UTC).replace(tzinfo=None)


@contextmanager
def simulated(time: SimulatedTime) -> Iterator[SimulatedTime]:
    """moto stamps stream records (DynamoDB Streams' creation times, Kinesis arrival times)
    with the scenario's time instead of the machine's."""
    with (
        mock.patch("moto.dynamodb.models.table.utcnow", time.utcnow),
        mock.patch("moto.kinesis.models.utcnow", time.utcnow),
    ):
        yield time
