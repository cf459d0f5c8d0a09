"""A fault-injecting HTTP reverse proxy for the cross-region link.

Each region's sender reaches the peer region's Kinesis through a FaultProxy, which forwards to
the moto server and adds what a real cross-border link does: latency, outages and per-record
throttling of PutRecords. Standard library only, so the emulator needs nothing extra.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import random
import socket
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

# Connection-level headers that must not be passed on by a proxy (RFC 9110 section 7.6.1);
# Content-Length is recomputed because bodies are re-framed (and may be rewritten).
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "expect",
        "content-length",
    }
)
PUT_RECORDS_SUFFIX = ".PutRecords"
THROTTLED = "ProvisionedThroughputExceededException"
DEFAULT_ACCOUNT = "123456789012"  # moto's account, used when the request names no stream ARN
STAT_NAMES = (
    "requests",
    "dropped_connections",
    "throttled_records",
    "forwarded_records",
    "bytes_up",
    "bytes_down",
)


class FaultProxy:
    """Reverse proxy to `upstream` with adjustable latency, link outages and throttling.

    All knobs (`latency_ms`, `throttle_rate`, the link state) may be changed while it runs.
    """

    def __init__(
        self,
        upstream: str,
        latency_ms: float = 80.0,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int | None = None,
    ):
        parts = urlsplit(upstream)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"upstream must be an http(s) URL, got {upstream!r}")
        self.upstream = upstream
        self._upstream_parts = parts
        self.latency_ms = latency_ms
        self.throttle_rate = 0.0
        self._host, self._port = host, port
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(STAT_NAMES, 0)
        self._forced_down = False
        self._down_until = 0.0  # time.monotonic() at which the current outage ends
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        if self._server is not None:
            raise RuntimeError("FaultProxy already started")
        self._server = _Server((self._host, self._port), self)
        # A short poll interval keeps stop() quick (shutdown waits for the next poll).
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fault-proxy-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.close_client_connections()  # so idle keep-alive handler threads end now
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FaultProxy not started")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    # -- link state -------------------------------------------------------------------------

    @property
    def link_up(self) -> bool:
        return not self._forced_down and time.monotonic() >= self._down_until

    @link_up.setter
    def link_up(self, up: bool) -> None:
        self.set_link(up)

    def set_link(self, up: bool) -> None:
        """Take the link down until further notice, or bring it up (ending any outage)."""
        with self._lock:
            self._forced_down = not up
            if up:
                self._down_until = 0.0

    def outage(self, seconds: float) -> None:
        """Drop every request that arrives during the next `seconds`."""
        with self._lock:
            self._down_until = time.monotonic() + seconds

    # -- counters ---------------------------------------------------------------------------

    @property
    def stats(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def _count(self, **increments: int) -> None:
        with self._lock:
            for name, amount in increments.items():
                self._counts[name] += amount

    def _choose_refused(self, count: int) -> list[bool]:
        # Under the lock so a seeded run refuses the same records whatever the thread timing.
        with self._lock:
            rate = self.throttle_rate
            return [rate > 0 and self._random.random() < rate for _ in range(count)]

    def _new_upstream_connection(self) -> http.client.HTTPConnection:
        parts = self._upstream_parts
        cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        return cls(parts.hostname, parts.port, timeout=60)


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a hung client connection must not keep the process alive

    def __init__(self, address: tuple[str, int], proxy: FaultProxy):
        self.proxy = proxy
        self._clients: set[socket.socket] = set()
        self._clients_lock = threading.Lock()
        super().__init__(address, _Handler)

    def track(self, sock: socket.socket, open_: bool) -> None:
        with self._clients_lock:
            (self._clients.add if open_ else self._clients.discard)(sock)

    def close_client_connections(self) -> None:
        with self._clients_lock:
            clients = list(self._clients)
        for sock in clients:
            with contextlib.suppress(OSError):  # already closed by its handler
                sock.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: object, client_address: object) -> None:
        # Clients hanging up mid-request is normal on a faulty link; anything else is a bug.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so botocore's connection pool works as usual
    server: _Server

    # One connection (and this handler) per thread, so its upstream connection is per thread too.
    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)
        self._upstream: http.client.HTTPConnection | None = None

    def finish(self) -> None:
        if self._upstream is not None:
            self._upstream.close()
        self.server.track(self.connection, False)
        with contextlib.suppress(OSError):  # the client went away; nothing left to flush
            super().finish()

    def log_message(self, format: str, *args: object) -> None:
        pass  # the emulator's output is for replication events, not access logs

    def handle_expect_100(self) -> bool:
        # Don't promise "100 Continue" over a dead link; returning False skips the request.
        if self.server.proxy.link_up:
            return super().handle_expect_100()
        self._drop()
        return False

    def _drop(self) -> None:
        # A dead link gives no answer at all. Closing the connection makes the client fail
        # fast with a connection error instead of waiting for its read timeout.
        self.server.proxy._count(requests=1, dropped_connections=1)
        self.close_connection = True

    def do_request(self) -> None:
        proxy = self.server.proxy
        body = self._read_body()
        if not proxy.link_up:
            self._drop()
            return
        proxy._count(requests=1)
        time.sleep(max(proxy.latency_ms, 0.0) / 1000)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in self._hop_by_hop()}
        if self.headers.get("X-Amz-Target", "").endswith(PUT_RECORDS_SUFFIX):
            self._put_records(headers, body)
        else:
            self._reply(*self._forward(headers, body))

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_request

    def _hop_by_hop(self) -> set[str]:
        # Headers named in Connection are hop-by-hop as well.
        named = self.headers.get("Connection", "")
        return HOP_BY_HOP | {name.strip().lower() for name in named.split(",") if name.strip()}

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _forward(
        self, headers: dict[str, str], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """Send the request upstream; returns (status, headers, body), or a 502 if unreachable."""
        proxy = self.server.proxy
        if body or "Content-Length" in self.headers or "Transfer-Encoding" in self.headers:
            headers = {**headers, "Content-Length": str(len(body))}
        path = proxy._upstream_parts.path.rstrip("/") + self.path
        for attempt in (1, 2):
            reused = self._upstream is not None
            if self._upstream is None:
                self._upstream = proxy._new_upstream_connection()
            try:
                # The client's Host header goes through unchanged: it is part of the signature.
                self._upstream.request(self.command, path, body or None, headers)
                response = self._upstream.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException) as error:
                self._upstream.close()
                self._upstream = None
                # A kept-alive upstream connection may have been closed under us; retry once.
                if reused and attempt == 1:
                    continue
                return 502, [("Content-Type", "text/plain")], f"upstream: {error}".encode()
            proxy._count(bytes_up=len(body))
            return response.status, response.getheaders(), data
        raise AssertionError("unreachable")

    def _put_records(self, headers: dict[str, str], body: bytes) -> None:
        proxy = self.server.proxy
        try:
            request = json.loads(body)
            records = request["Records"]
        except (ValueError, KeyError, TypeError):
            self._reply(*self._forward(headers, body))  # not ours to judge; moto will answer
            return
        refused = proxy._choose_refused(len(records))
        accepted = [record for record, no in zip(records, refused, strict=True) if not no]
        proxy._count(forwarded_records=len(accepted))
        if not any(refused):
            self._reply(*self._forward(headers, body))
            return
        if accepted:
            status, upstream_headers, data = self._forward(
                headers, json.dumps({**request, "Records": accepted}).encode()
            )
            if status != 200:
                self._reply(status, upstream_headers, data)  # the whole call failed anyway
                return
            result = json.loads(data)
        else:
            # Everything refused: the peer's Kinesis never sees the call.
            upstream_headers = [("x-amzn-RequestId", str(uuid.uuid4()))]
            result = {"FailedRecordCount": 0, "Records": []}
        error = {"ErrorCode": THROTTLED, "ErrorMessage": _rate_exceeded_message(request)}
        upstream_results = iter(result["Records"])
        merged = [dict(error) if no else next(upstream_results) for no in refused]
        failed = result.get("FailedRecordCount", 0) + sum(refused)
        proxy._count(throttled_records=sum(refused))
        response = {**result, "FailedRecordCount": failed, "Records": merged}
        kept = [
            (k, v) for k, v in upstream_headers if k.lower() not in ("content-type", "x-amz-crc32")
        ]
        kept.append(("Content-Type", "application/x-amz-json-1.1"))
        self._reply(200, kept, json.dumps(response).encode())

    def _reply(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response_only(status)
        for name, value in headers:
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        no_body = self.command == "HEAD" or status in (204, 304) or status < 200
        if self.command == "HEAD":
            # A HEAD answer describes the body a GET would get; keep upstream's length.
            length = next((v for k, v in headers if k.lower() == "content-length"), None)
            if length is not None:
                self.send_header("Content-Length", length)
        elif not no_body:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not no_body:
            self.wfile.write(body)
            self.server.proxy._count(bytes_down=len(body))


def _rate_exceeded_message(request: dict) -> str:
    arn = request.get("StreamARN") or ""
    # arn:aws[-cn]:kinesis:<region>:<account>:stream/<name>
    arn_parts = arn.split(":")
    account = arn_parts[4] if len(arn_parts) > 5 else DEFAULT_ACCOUNT
    stream = request.get("StreamName") or arn.rpartition("/")[2]
    return (
        f"Rate exceeded for shard shardId-000000000000 in stream {stream} under account {account}."
    )
