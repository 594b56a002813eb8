"""One-time join tokens that let a new node obtain its first SVID from the CA.

Owns ``<ca_dir>/tokens.json`` (a list of ``{"sha256", "expires", "used", "created"}``
records; only the SHA-256 of each token is stored, never the token), creating and redeeming
tokens under an exclusive ``flock`` on ``<ca_dir>/tokens.lock`` so that a token is redeemed
at most once even by concurrent processes, and parsing human TTLs such as ``15m``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import math
import re
import secrets
import time
from pathlib import Path
from types import MappingProxyType
from typing import Any

from hyperion.identity import _fs
from hyperion.identity.ca import CertificateAuthority
from hyperion.identity.errors import IdentityError, TokenError

TOKEN_PREFIX = "hyp1."
TOKENS_FILE = "tokens.json"
LOCK_FILE = "tokens.lock"

_TTL_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([smhd]?)", re.ASCII)
_TTL_UNITS = MappingProxyType({"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0})


def _iso(epoch: float) -> str:
    return (
        dt.datetime.fromtimestamp(epoch, tz=dt.UTC)
        .isoformat(timespec="seconds")
        .replace("+00:00", "Z")
    )


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _require_ca(ca_dir: Path) -> None:
    if not CertificateAuthority.exists(ca_dir):
        raise IdentityError(f"no CA in {ca_dir} (run `hyperion ca init --dir {ca_dir}`)")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _read_records(ca_dir: Path) -> list[dict[str, Any]]:
    path = ca_dir / TOKENS_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as e:
        raise IdentityError(f"cannot read {path}: {e.strerror or e}") from e
    malformed = f"{path} is malformed; fix or remove it by hand"
    try:
        records = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise IdentityError(malformed) from e
    if not isinstance(records, list):
        raise IdentityError(malformed)
    for rec in records:
        if not (
            isinstance(rec, dict)
            and isinstance(rec.get("sha256"), str)
            and _is_number(rec.get("expires"))
            and (rec.get("used") is None or _is_number(rec.get("used")))
            and _is_number(rec.get("created"))
        ):
            raise IdentityError(malformed)
    return records


def _write_records(ca_dir: Path, records: list[dict[str, Any]]) -> None:
    data = (json.dumps(records, indent=2) + "\n").encode()
    _fs.atomic_write(ca_dir / TOKENS_FILE, data, mode=0o600)


def create_token(ca_dir: Path, *, ttl_s: float, now: float | None = None) -> str:
    """Create a one-time join token valid for ``ttl_s`` seconds and return it.

    Only its SHA-256 is stored; the returned string is the only copy of the token.
    """
    ca_dir = Path(ca_dir)
    if not _is_number(ttl_s) or not math.isfinite(ttl_s) or ttl_s <= 0:
        raise IdentityError(f"join token TTL must be a positive number of seconds, not {ttl_s}")
    _require_ca(ca_dir)
    if now is None:
        now = time.time()
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with _fs.locked(ca_dir / LOCK_FILE):
        records = _read_records(ca_dir)
        records.append(
            {"sha256": _hash(token), "expires": now + ttl_s, "used": None, "created": now}
        )
        _write_records(ca_dir, records)
    return token


def redeem_token(ca_dir: Path, token: str, *, now: float | None = None) -> None:
    """Mark ``token`` used; raise TokenError if it is unknown, expired or already used."""
    ca_dir = Path(ca_dir)
    _require_ca(ca_dir)
    if not isinstance(token, str):
        raise TokenError("unknown join token")
    digest = _hash(token.strip())
    with _fs.locked(ca_dir / LOCK_FILE):
        if now is None:
            now = time.time()
        records = _read_records(ca_dir)
        record = next(
            (r for r in records if hmac.compare_digest(r["sha256"], digest)),
            None,
        )
        if record is None:
            raise TokenError("unknown join token")
        if record["used"] is not None:
            raise TokenError(f"join token already used (at {_iso(record['used'])})")
        if now >= record["expires"]:
            raise TokenError(f"join token expired at {_iso(record['expires'])}")
        record["used"] = now
        _write_records(ca_dir, records)


def parse_ttl(text: str) -> float:
    """Parse a TTL such as ``90s``, ``15m``, ``1h``, ``2d`` or ``3600`` into seconds."""
    invalid = (
        f"invalid TTL {text!r}: use a positive number of seconds or a duration "
        "such as 90s, 15m, 1h or 2d"
    )
    if not isinstance(text, str):
        raise IdentityError(invalid)
    match = _TTL_RE.fullmatch(text.strip().lower())
    if match is None:
        raise IdentityError(invalid)
    seconds = float(match.group(1)) * _TTL_UNITS[match.group(2)]
    if not math.isfinite(seconds) or seconds <= 0:
        raise IdentityError(invalid)
    return seconds
