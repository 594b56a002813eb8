"""Hyperion: one decentralized compute mesh over many clouds, regions and edge devices.

Layers (DESIGN §2), each a subpackage; a layer may call down, never up:
identity → net → mesh → workplane → control/policy → api, with runtime beside them,
sim (the deterministic simulator) and cli (the `hyperion` command).
"""

__version__ = "0.2.0"
PROTOCOL_VERSION = 2  # wire format: hyperion/net/wire.proto; version 1 in net/compat
