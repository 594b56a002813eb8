"""Signed envelopes: every mesh message is wrapped, signed and checked here.

An envelope carries the protocol version, the sender's node id and Ed25519 public key,
a millisecond timestamp, a 16-byte nonce, the message body and a signature over all of
them. ``open_envelope`` accepts one only if the key hashes to the claimed node id
(self-certifying ids), the signature verifies, the timestamp is inside the replay window
and the (sender, nonce) pair has not been seen in that window. Everything rejected is
counted by reason; nothing raises except ``EnvelopeError``.

This module owns the envelope format and replay protection; it knows nothing about the
messages inside or the transport below.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from hyperion import PROTOCOL_VERSION
from hyperion.identity.keys import NODE_ID_BYTES, NodeKey, node_id_from_public_key, verify_signature
from hyperion.net import wire_pb2

NONCE_BYTES = 16
REPLAY_WINDOW_S = 30.0  # accepted clock skew + in-flight time, each way
MAX_NONCES = 1 << 17  # remembered (sender, nonce) pairs; ~20 MiB at most
MAX_ENVELOPE_BYTES = 4 << 20  # a full-state push-pull of ~40k members fits
_DOMAIN = b"hyperion-envelope-v1\x00"


class EnvelopeError(Exception):
    """An envelope was rejected; ``reason`` is a short stable code used in counters."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Opened:
    sender: str  # node id, hex
    sender_key: bytes
    protocol_version: int
    timestamp_ms: int
    body: bytes


def signing_bytes(
    version: int, sender: bytes, sender_key: bytes, timestamp_ms: int, nonce: bytes, body: bytes
) -> bytes:
    """Canonical bytes the signature covers (length-prefixed, so fields cannot shift)."""
    parts = [sender, sender_key, nonce, body]
    head = struct.pack(">Iq", version, timestamp_ms)
    return _DOMAIN + head + b"".join(struct.pack(">I", len(p)) + p for p in parts)


def seal(
    key: NodeKey, body: bytes, *, now_ms: int, nonce: bytes, version: int = PROTOCOL_VERSION
) -> wire_pb2.Envelope:
    """Wrap and sign ``body`` as ``key``'s node."""
    if len(nonce) != NONCE_BYTES:
        raise ValueError("nonce must be 16 bytes")
    sender = bytes.fromhex(key.node_id)
    pub = key.public_bytes
    sig = key.sign(signing_bytes(version, sender, pub, now_ms, nonce, body))
    return wire_pb2.Envelope(
        protocol_version=version,
        sender=sender,
        sender_key=pub,
        timestamp_ms=now_ms,
        nonce=nonce,
        body=body,
        signature=sig,
    )


class ReplayGuard:
    """Rejects envelopes outside the time window or whose nonce was already seen.

    The nonce cache is bounded. When it is full the oldest entry is evicted and the
    window's lower edge moves up to that entry's timestamp, so an evicted nonce can
    never be replayed: anything that old is rejected as stale instead.
    """

    def __init__(self, window_s: float = REPLAY_WINDOW_S, max_nonces: int = MAX_NONCES) -> None:
        self.window_ms = int(window_s * 1000)
        self.max_nonces = max_nonces
        self._seen: OrderedDict[tuple[bytes, bytes], int] = OrderedDict()
        self._floor_ms = -(1 << 62)

    def check(self, sender: bytes, nonce: bytes, timestamp_ms: int, now_ms: int) -> None:
        if timestamp_ms > now_ms + self.window_ms:
            raise EnvelopeError("future", "timestamp ahead of the replay window")
        if timestamp_ms < now_ms - self.window_ms or timestamp_ms <= self._floor_ms:
            raise EnvelopeError("stale", "timestamp behind the replay window")
        key = (sender, nonce)
        if key in self._seen:
            raise EnvelopeError("replay", "nonce already seen")
        seen = self._seen
        horizon = now_ms - self.window_ms
        while seen:
            oldest = next(iter(seen.values()))
            if oldest >= horizon:
                break
            seen.popitem(last=False)
        while len(seen) >= self.max_nonces:
            _, ts = seen.popitem(last=False)
            self._floor_ms = max(self._floor_ms, ts)
        seen[key] = timestamp_ms


def open_envelope(data: bytes, *, now_ms: int, guard: ReplayGuard) -> Opened:
    """Decode and verify one envelope. Raises ``EnvelopeError`` and nothing else."""
    if len(data) > MAX_ENVELOPE_BYTES:
        raise EnvelopeError("malformed", "envelope too large")
    env = wire_pb2.Envelope()
    try:
        env.ParseFromString(data)
    except (DecodeError, ValueError, RuntimeError) as e:
        raise EnvelopeError("malformed", str(e)) from None
    return verify(env, now_ms=now_ms, guard=guard)


def verify(env: wire_pb2.Envelope, *, now_ms: int, guard: ReplayGuard) -> Opened:
    """Verify an already-parsed envelope (the gRPC layer parses it for us)."""
    if env.protocol_version < 1:
        raise EnvelopeError("malformed", "missing protocol version")
    if len(env.sender) != NODE_ID_BYTES or len(env.sender_key) != 32:
        raise EnvelopeError("malformed", "bad sender id or key length")
    if len(env.nonce) != NONCE_BYTES or len(env.signature) != 64:
        raise EnvelopeError("malformed", "bad nonce or signature length")
    sender_hex = env.sender.hex()
    if node_id_from_public_key(env.sender_key) != sender_hex:
        raise EnvelopeError("id_mismatch", "sender id is not the hash of its key")
    msg = signing_bytes(
        env.protocol_version, env.sender, env.sender_key, env.timestamp_ms, env.nonce, env.body
    )
    if not verify_signature(env.sender_key, msg, env.signature):
        raise EnvelopeError("bad_signature", "signature does not verify")
    guard.check(env.sender, env.nonce, env.timestamp_ms, now_ms)
    return Opened(sender_hex, env.sender_key, env.protocol_version, env.timestamp_ms, env.body)
