"""Signing and verifying what the mesh layer carries: DHT records and pub/sub messages.

The cores take these as injected functions (crypto is not I/O, but keeping it outside
the cores lets the simulator share verification work). ``node_record_policy`` is the
write rule for node records: the record lives under its author's node id, and that id
must be the hash of the key that signed it.
"""

from __future__ import annotations

from hyperion.identity.keys import NodeKey, node_id_from_public_key, verify_signature
from hyperion.mesh.dht import Record
from hyperion.mesh.pubsub import Message


def verify_record(rec: Record) -> bool:
    return verify_signature(rec.author_key, rec.signing_bytes(), rec.signature)


def verify_message(m: Message) -> bool:
    if node_id_from_public_key(m.origin_key) != m.origin:
        return False
    return verify_signature(m.origin_key, m.signing_bytes(), m.signature)


def node_record_policy(rec: Record) -> bool:
    """A node record lives under its node's id and only that node may write it."""
    return rec.key == rec.author and node_id_from_public_key(rec.author_key) == rec.author


def signed_record(key: NodeKey, value: bytes, version: int, expires_at: float) -> Record:
    """The node record ``value`` of ``key``'s node, signed by it."""
    return Record(key.node_id, value, key.node_id, key.public_bytes, version, expires_at).signed(
        key.sign
    )
