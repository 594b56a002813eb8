"""Signing and verifying what the mesh layer carries: DHT records and pub/sub messages.

The cores take these as injected functions (crypto is not I/O, but keeping it outside
the cores lets the simulator share verification work). Write policies (who may write a
DHT key; ``dht.WritePolicy``):

* ``node_record_policy``: node records only. The record lives under its author's node
  id, and that id must be the hash of the key that signed it.
* ``mesh_record_policy``: what real nodes run. Node records as above; any other key
  holds a typed value (``hyperion.mesh.leases``) whose key derives from its content: a
  lease only its holder may write, a workload record only the workload's custodian.
  Either way the author id must be the hash of the signing key.
"""

from __future__ import annotations

from hyperion.identity.keys import NodeKey, node_id_from_public_key, verify_signature
from hyperion.mesh import leases
from hyperion.mesh.dht import NearestIds, Record
from hyperion.mesh.pubsub import Message


def verify_record(rec: Record) -> bool:
    return verify_signature(rec.author_key, rec.signing_bytes(), rec.signature)


def verify_message(m: Message) -> bool:
    if node_id_from_public_key(m.origin_key) != m.origin:
        return False
    return verify_signature(m.origin_key, m.signing_bytes(), m.signature)


def node_record_policy(rec: Record, nearest: NearestIds | None = None) -> str | None:
    """A node record lives under its node's id and only that node may write it."""
    if rec.key == rec.author and node_id_from_public_key(rec.author_key) == rec.author:
        return None
    return "not_authorized"


def mesh_record_policy(rec: Record, nearest: NearestIds) -> str | None:
    """Node records, replica leases and workload records (see the module docstring)."""
    if rec.key == rec.author:
        return node_record_policy(rec)
    if node_id_from_public_key(rec.author_key) != rec.author:
        return "not_authorized"
    return leases.write_rule(rec.key, rec.author, rec.value, nearest)


def signed_record(key: NodeKey, value: bytes, version: int, expires_at: float) -> Record:
    """The node record ``value`` of ``key``'s node, signed by it."""
    return Record(key.node_id, value, key.node_id, key.public_bytes, version, expires_at).signed(
        key.sign
    )


def signed_value(key: NodeKey, value: leases.Value, version: int, expires_at: float) -> Record:
    """A lease or workload record of ``key``'s node, under the key its value derives."""
    return Record(
        value.key, leases.encode(value), key.node_id, key.public_bytes, version, expires_at
    ).signed(key.sign)
