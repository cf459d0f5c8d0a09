"""boto3 clients created on first use and shared by every invocation of a warm function."""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config


class Clients:
    """The clients one function uses in its own region.

    Created lazily, so importing a handler never touches AWS, and reused, so a warm
    function pays for connection set-up once. boto3 clients are thread-safe; the pool is
    sized for the function's worker threads.
    """

    def __init__(
        self,
        region: str,
        pool_size: int = 10,
        session: boto3.Session | None = None,
        endpoint_url: str | None = None,  # operator tools against the emulator; never in Lambda
    ):
        self.region = region
        self._session = session or boto3.Session()
        self._endpoint_url = endpoint_url
        self._config = Config(
            region_name=region,
            max_pool_connections=pool_size,
            # Calls within the region take milliseconds; these bound the worst case
            # (3 x 7 s) well inside a one-minute function timeout.
            retries={"mode": "standard", "max_attempts": 3},
            connect_timeout=2,
            read_timeout=5,
        )
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    @property
    def session(self) -> boto3.Session:
        """The session the clients come from (its events reach every client made after)."""
        return self._session

    def __call__(self, service: str) -> Any:
        client = self._clients.get(service)
        if client is None:
            with self._lock:
                client = self._clients.get(service)
                if client is None:
                    client = self._session.client(
                        service, config=self._config, endpoint_url=self._endpoint_url
                    )
                    self._clients[service] = client
        return client

    def lazy(self, service: str) -> Any:
        """A stand-in that creates the client on first use, for objects built at cold start."""
        return _LazyClient(self, service)


class _LazyClient:
    def __init__(self, clients: Clients, service: str):
        self._clients = clients
        self._service = service

    def __getattr__(self, name: str) -> Any:
        return getattr(self._clients(self._service), name)
