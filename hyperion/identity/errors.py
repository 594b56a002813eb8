"""Exceptions raised by the identity layer.

Owns the error types only. Every message is one clear human sentence, because the CLI
prints it verbatim as ``error: <msg>``.
"""

from __future__ import annotations


class IdentityError(Exception):
    """A key, certificate, SPIFFE ID, CA or token problem the user can act on."""


class TokenError(IdentityError):
    """A join token could not be redeemed (unknown, expired or already used)."""


class EnrollError(IdentityError):
    """Enrollment or renewal over the network failed: a malformed request (issuer side),
    a CA that does not match the pin, a refusal or an unreachable issuer (joiner side)."""


class RevocationError(IdentityError):
    """A revocation record is malformed, badly signed, or cannot be stored or read."""
