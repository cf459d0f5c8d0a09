"""The peer region's Kinesis stream, reached with the peer account's keys from SSM.

The keys are read when first needed, cached for a few minutes, and read again at once
when the peer rejects them, so a rotated key pair takes effect without a redeploy.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from replication.settings import SenderSettings

# What the peer answers when the keys themselves are wrong, expired or revoked.
REJECTED_CREDENTIALS = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "InvalidClientTokenId",
        "ExpiredTokenException",
        "IncompleteSignature",
        "AccessDeniedException",
    }
)


# How the placeholder modules/replication_node gives the parameters begins; a real key can't.
UNSET_MARK = "unset:"


class PeerCredentialsError(RuntimeError):
    """The peer's keys are missing from Parameter Store or unreadable."""


class PeerCredentials:
    """The peer account's access key pair, from `<prefix>AccessKey` and `<prefix>SecretKey`."""

    def __init__(
        self,
        ssm: Any,
        prefix: str,
        ttl_seconds: int,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._ssm = ssm
        self.access_key_name = f"{prefix}AccessKey"
        self.secret_key_name = f"{prefix}SecretKey"
        self._ttl = ttl_seconds
        self._clock = clock
        self._cached: tuple[str, str] | None = None
        self._read_at = 0.0
        self._lock = threading.Lock()
        self.reads = 0

    def get(self) -> tuple[str, str]:
        with self._lock:
            if self._cached is None or self._clock() - self._read_at >= self._ttl:
                self._cached = self._read()
                self._read_at = self._clock()
            return self._cached

    def invalidate(self) -> None:
        with self._lock:
            self._cached = None

    def _read(self) -> tuple[str, str]:
        self.reads += 1
        names = [self.access_key_name, self.secret_key_name]
        try:
            response = self._ssm.get_parameters(Names=names, WithDecryption=True)
        except ClientError as exc:
            raise PeerCredentialsError(f"cannot read {', '.join(names)}: {exc}") from exc
        values = {p["Name"]: p["Value"] for p in response.get("Parameters", [])}
        missing = [name for name in names if not values.get(name)]
        if missing:
            raise PeerCredentialsError(f"Parameter Store has no value for {', '.join(missing)}")
        unset = [name for name in names if values[name].startswith(UNSET_MARK)]
        if unset:
            raise PeerCredentialsError(
                f"{', '.join(unset)} still hold the placeholder Terraform created: store the "
                "peer's writer keys with tools/peer_keys.py"
            )
        return values[self.access_key_name], values[self.secret_key_name]


class PeerStream:
    """PutRecords into the peer region's replication stream.

    One client per key pair, reused across invocations; rebuilt when the keys change.
    Each call makes one attempt bounded by the connect and read timeouts; retrying is the
    caller's, which knows how much of the invocation is left.
    """

    def __init__(self, settings: SenderSettings, credentials: PeerCredentials):
        self.settings = settings
        self.credentials = credentials
        self._client: Any = None
        self._client_keys: tuple[str, str] | None = None
        self._lock = threading.Lock()
        self.credential_refreshes = 0

    def put_records(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        try:
            return self.client().put_records(StreamName=self.settings.peer_stream, Records=records)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in REJECTED_CREDENTIALS:
                raise
        # The peer refused the keys: they may have been rotated since we read them.
        self.credentials.invalidate()
        self.credential_refreshes += 1
        return self.client().put_records(StreamName=self.settings.peer_stream, Records=records)

    def client(self) -> Any:
        """The Kinesis client for the current key pair (built, or rebuilt, as needed)."""
        keys = self.credentials.get()
        with self._lock:
            if self._client is None or keys != self._client_keys:
                self._client = self._build_client(keys)
                self._client_keys = keys
            return self._client

    def _build_client(self, keys: tuple[str, str]) -> Any:
        s = self.settings
        config = Config(
            region_name=s.peer_region,
            connect_timeout=s.connect_timeout_seconds,
            read_timeout=s.read_timeout_seconds,
            # One attempt per call: the sender's own loop retries, and only while a whole
            # attempt still fits in the invocation (see outbound.Sender._ship).
            retries={"mode": "standard", "total_max_attempts": 1},
            proxies={"https": s.peer_proxy_url, "http": s.peer_proxy_url}
            if s.peer_proxy_url
            else None,
            max_pool_connections=4,
        )
        # A session of its own: the peer's keys must never leak into this account's clients.
        session = boto3.Session(aws_access_key_id=keys[0], aws_secret_access_key=keys[1])
        return session.client("kinesis", config=config, endpoint_url=s.peer_endpoint_url)
