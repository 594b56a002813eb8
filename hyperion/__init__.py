"""Hyperion: one decentralized compute mesh over many clouds, regions and edge devices.

Layers (DESIGN §2), each a subpackage; a layer may call down, never up:
identity → net → mesh → workplane → control/policy → api, with runtime beside them,
sim (the deterministic simulator) and cli (the `hyperion` command).
"""

__version__ = "0.2.0"
PROTOCOL_VERSION = 2  # wire format: hyperion/net/wire.proto; version 1 in net/compat


def software_version(protocol: int = PROTOCOL_VERSION) -> str:
    """The software version a node speaking ``protocol`` reports in its node record.

    A node run with an older wire version (compatibility testing) reports that release
    with build metadata, which semver precedence ignores: ``0.1.0+compat``.
    """
    return __version__ if protocol == PROTOCOL_VERSION else f"0.{protocol}.0+compat"


def protocols_spoken(protocol: int = PROTOCOL_VERSION) -> tuple[int, ...]:
    """The protocol versions a node speaking ``protocol`` understands (it reads older ones)."""
    return tuple(range(1, protocol + 1))
