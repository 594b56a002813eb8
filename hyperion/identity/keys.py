"""Node keys: the Ed25519 key pair that is a node's long-term identity.

Owns generating, storing (PEM PKCS8, mode 0600, atomic) and loading a node's private key,
the self-certifying node id (a hash of the public key, so anyone can check that a public key
belongs to a node id without asking anyone), and signing / verifying messages with it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from hyperion.identity import _fs
from hyperion.identity.errors import IdentityError

NODE_ID_BYTES = 20
_PUBLIC_KEY_BYTES = 32
_SIGNATURE_BYTES = 64


def node_id_from_public_key(public_key: bytes) -> str:
    """Return the node id for a raw Ed25519 public key: 40 hex chars of its SHA-256."""
    return hashlib.sha256(public_key).digest()[:NODE_ID_BYTES].hex()


class NodeKey:
    """A node's Ed25519 private key."""

    __slots__ = ("_key",)

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key

    @classmethod
    def generate(cls) -> NodeKey:
        """Create a new random node key."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load(cls, path: Path) -> NodeKey:
        """Load a node key from an unencrypted PEM PKCS8 file."""
        path = Path(path)
        data = _fs.read_bytes(path, what="node key")
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as e:
            raise IdentityError(f"{path} is not a valid unencrypted PEM node key") from e
        if not isinstance(key, Ed25519PrivateKey):
            raise IdentityError(f"{path} holds a key that is not Ed25519")
        return cls(key)

    def save(self, path: Path) -> None:
        """Write the key to ``path`` as PEM PKCS8, atomically, readable only by the owner."""
        path = Path(path)
        _fs.ensure_dir(path.parent)
        pem = self._key.private_bytes(
            encoding=serialization.Encoding.PEM,
            format=serialization.PrivateFormat.PKCS8,
            encryption_algorithm=serialization.NoEncryption(),
        )
        _fs.atomic_write(path, pem, mode=0o600)

    @property
    def public_bytes(self) -> bytes:
        """The 32-byte raw Ed25519 public key."""
        return self._key.public_key().public_bytes(
            encoding=serialization.Encoding.Raw, format=serialization.PublicFormat.Raw
        )

    @property
    def node_id(self) -> str:
        """The self-certifying node id derived from the public key."""
        return node_id_from_public_key(self.public_bytes)

    def sign(self, data: bytes) -> bytes:
        """Return the 64-byte Ed25519 signature of ``data``."""
        return self._key.sign(data)

    def __repr__(self) -> str:
        return f"NodeKey(node_id={self.node_id!r})"


def verify_signature(public_key: bytes, data: bytes, signature: bytes) -> bool:
    """Check an Ed25519 signature; returns False (never raises) on any malformed input."""
    try:
        if len(public_key) != _PUBLIC_KEY_BYTES or len(signature) != _SIGNATURE_BYTES:
            return False
        key = Ed25519PublicKey.from_public_bytes(bytes(public_key))
        key.verify(bytes(signature), bytes(data))
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True
