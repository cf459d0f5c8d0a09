"""Signed changes: the peer's writer key lets it put records into our stream, not change our data.

Each change is signed with HMAC-SHA256 over its encoded bytes, with a secret both regions hold
in Parameter Store (a SecureString, the same name and value on both sides). The parameter holds
a small key ring, so a secret can be rotated without losing a change in flight:

    {"current": "k2", "keys": {"k1": "<base64 secret>", "k2": "<base64 secret>"}}

The sender signs with `current`; the replicator accepts a signature by any key in the ring
(the current and the previous one, and during a rotation the next one). A rotation first adds
the new key in both regions, then makes it current in both, then, a retention period later,
drops the oldest (tools/signing_keys.py does it in that order).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

SECRET_BYTES = 32
MIN_SECRET_BYTES = 16
KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MAX_KEYS = 3  # previous, current and, while a rotation is under way, next
MAC_BYTES = hashlib.sha256().digest_size
# A replicator re-reads the ring on a signature by a key it doesn't know (a rotation it hasn't
# seen yet), but not more often than this: forged key IDs must not hammer Parameter Store.
UNKNOWN_KEY_REREAD_SECONDS = 30


class SigningKeysError(RuntimeError):
    """The key ring is missing, unreadable or malformed; the message says what to fix."""


class BadSignature(ValueError):
    """A signature that doesn't verify, or that names no key of the ring."""


@dataclass(frozen=True)
class Signature:
    key_id: str
    mac: bytes

    def to_wire(self) -> dict[str, str]:
        return {"kid": self.key_id, "mac": base64.b64encode(self.mac).decode()}

    @classmethod
    def from_wire(cls, raw: Any) -> Signature:
        if not isinstance(raw, dict) or set(raw) != {"kid", "mac"}:
            raise BadSignature("sig must be an object of kid and mac")
        key_id, mac = raw["kid"], raw["mac"]
        if not isinstance(key_id, str) or not KEY_ID.match(key_id):
            raise BadSignature("sig.kid is not a key ID")
        try:
            digest = base64.b64decode(mac, validate=True) if isinstance(mac, str) else b""
        except (binascii.Error, ValueError):
            digest = b""
        if len(digest) != MAC_BYTES:
            raise BadSignature("sig.mac is not a base64 HMAC-SHA256")
        return cls(key_id, digest)


@dataclass(frozen=True)
class SigningKeys:
    current: str
    keys: dict[str, bytes]

    def __post_init__(self) -> None:
        if not self.keys or len(self.keys) > MAX_KEYS:
            raise SigningKeysError(f"a signing key ring holds 1 to {MAX_KEYS} keys")
        for key_id, secret in self.keys.items():
            if not KEY_ID.match(key_id):
                raise SigningKeysError(f"{key_id!r} is not a key ID (letters, digits, _ . -)")
            if len(secret) < MIN_SECRET_BYTES:
                raise SigningKeysError(f"key {key_id} is shorter than {MIN_SECRET_BYTES} bytes")
        if self.current not in self.keys:
            raise SigningKeysError(f"the current key {self.current!r} is not in the ring")

    def __repr__(self) -> str:  # never the secrets, wherever it is logged
        return f"SigningKeys(current={self.current!r}, keys={sorted(self.keys)!r})"

    # -- the parameter's text -------------------------------------------------------------

    @classmethod
    def parse(cls, text: str) -> SigningKeys:
        try:
            doc = json.loads(text)
        except ValueError:
            raise SigningKeysError("the signing keys are not JSON") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("keys"), dict):
            raise SigningKeysError('the signing keys must be {"current": ID, "keys": {ID: ...}}')
        keys = {}
        for key_id, encoded in doc["keys"].items():
            try:
                keys[key_id] = base64.b64decode(encoded, validate=True)
            except (binascii.Error, TypeError, ValueError):
                raise SigningKeysError(f"key {key_id} is not base64") from None
        return cls(str(doc.get("current")), keys)

    def to_json(self) -> str:
        encoded = {k: base64.b64encode(v).decode() for k, v in self.keys.items()}
        return json.dumps({"current": self.current, "keys": encoded}, separators=(",", ":"))

    # -- signing ------------------------------------------------------------------------

    def sign(self, payload: bytes) -> Signature:
        return Signature(self.current, _mac(self.keys[self.current], payload))

    def verify(self, payload: bytes, signature: Signature) -> None:
        """Raises BadSignature unless a key of the ring made `signature` over `payload`."""
        secret = self.keys.get(signature.key_id)
        if secret is None:
            raise BadSignature(f"signed with key {signature.key_id!r}, which the ring lacks")
        if not hmac.compare_digest(_mac(secret, payload), signature.mac):
            raise BadSignature(f"the signature by key {signature.key_id!r} does not match")

    # -- rotation steps (tools/signing_keys.py applies each to both regions) ---------------

    @classmethod
    def generate(cls, key_id: str | None = None) -> SigningKeys:
        key_id = key_id or new_key_id()
        return cls(key_id, {key_id: secrets.token_bytes(SECRET_BYTES)})

    # The ring is kept in the order keys were made current: those before `current` signed
    # earlier (the last of them is the previous key), one after it is waiting to be promoted.

    def _previous(self) -> list[str]:
        order = list(self.keys)
        return order[: order.index(self.current)][-1:]

    def with_next(self, key_id: str, secret: bytes) -> SigningKeys:
        """Step 1: accept a new key, still signing with the current one. The ring keeps the
        previous key (changes signed with it may still be in flight) and drops anything older,
        and any earlier key that was never promoted (nothing was signed with it)."""
        kept = {k: self.keys[k] for k in [*self._previous(), self.current] if k != key_id}
        return SigningKeys(self.current, {**kept, key_id: secret})

    def promoted(self, key_id: str) -> SigningKeys:
        """Step 2: sign with `key_id`; the old current key stays, to verify changes in flight."""
        if key_id not in self.keys:
            raise SigningKeysError(f"key {key_id!r} is not in the ring: add it first")
        others = {k: v for k, v in self.keys.items() if k != key_id}
        return SigningKeys(key_id, {**others, key_id: self.keys[key_id]})

    def retired(self) -> SigningKeys:
        """Step 3: keep only the current key and the one before it."""
        kept = [*self._previous(), self.current]
        return SigningKeys(self.current, {k: self.keys[k] for k in kept})


def new_key_id() -> str:
    return time.strftime("k%Y%m%d%H%M%S", time.gmtime()) + secrets.token_hex(2)


def _mac(secret: bytes, payload: bytes) -> bytes:
    return hmac.new(secret, payload, hashlib.sha256).digest()


class KeyRing:
    """The signing keys from Parameter Store: read when first needed, cached for a few minutes,
    and read again early (at most every UNKNOWN_KEY_REREAD_SECONDS) when a signature names a
    key the cached ring lacks."""

    def __init__(
        self,
        ssm: Any,
        parameter: str,
        ttl_seconds: int,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._ssm = ssm
        self.parameter = parameter
        self._ttl = ttl_seconds
        self._clock = clock
        self._cached: SigningKeys | None = None
        self._read_at = 0.0
        self._lock = threading.Lock()
        self.reads = 0

    def get(self) -> SigningKeys:
        with self._lock:
            if self._cached is None or self._clock() - self._read_at >= self._ttl:
                self._refresh()
            assert self._cached is not None
            return self._cached

    def verify(self, payload: bytes, signature: Signature) -> None:
        keys = self.get()
        if signature.key_id not in keys.keys:
            with self._lock:
                if self._clock() - self._read_at >= UNKNOWN_KEY_REREAD_SECONDS:
                    self._refresh()
                keys = self._cached or keys
        keys.verify(payload, signature)

    def _refresh(self) -> None:
        self.reads += 1
        try:
            response = self._ssm.get_parameter(Name=self.parameter, WithDecryption=True)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code == "ParameterNotFound":
                raise SigningKeysError(
                    f"Parameter Store has no {self.parameter}: create the signing keys in both "
                    "regions with tools/signing_keys.py init"
                ) from None
            raise SigningKeysError(f"cannot read {self.parameter}: {exc}") from exc
        text = response.get("Parameter", {}).get("Value", "")
        try:
            self._cached = SigningKeys.parse(text)
        except SigningKeysError as exc:
            raise SigningKeysError(f"{self.parameter}: {exc}") from None
        self._read_at = self._clock()
