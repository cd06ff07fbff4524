"""Passwords, session and CSRF tokens, phone masking: pure functions."""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Optional

# scrypt parameters (RFC 7914): N=2^14, r=8, p=1 uses 16 MiB and ~50 ms.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P, _DKLEN = 2**14, 8, 1, 32


def hash_password(password: str, *, salt: Optional[bytes] = None) -> str:
    """A salted scrypt hash: `scrypt$N$r$p$salt_hex$hash_hex`."""
    if not password:
        raise ValueError("password must not be empty")
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=_DKLEN
    )
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """True when `password` matches a hash made by hash_password (constant time)."""
    try:
        scheme, n, r, p, salt_hex, hash_hex = stored.split("$")
        if scheme != "scrypt":
            return False
        digest = hashlib.scrypt(
            password.encode("utf-8"), salt=bytes.fromhex(salt_hex),
            n=int(n), r=int(r), p=int(p), dklen=len(hash_hex) // 2,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest.hex(), hash_hex)


# A hash that verify_password never accepts, to spend the same time on
# unknown user names as on wrong passwords.
DUMMY_HASH = hash_password("not-a-real-password", salt=b"\0" * 16)


def new_token() -> str:
    """A random URL-safe token (256 bits)."""
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """What the store keeps of a session token (a leaked DB gives no sessions)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def tokens_equal(a: Optional[str], b: Optional[str]) -> bool:
    """Constant-time comparison that is False for missing values."""
    if not a or not b:
        return False
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


_PHONE_IN_TEXT = re.compile(r"(?<!\d)(?:\+?86[\s-]?|0086[\s-]?)?(1[3-9]\d)[\s-]?(\d{4})[\s-]?(\d{4})(?!\d)")


def mask_phone(phone: Optional[str]) -> str:
    """`13812345678` -> `138****5678`; other numbers keep 3 + last 4 digits."""
    if not phone:
        return ""
    digits = re.sub(r"\D", "", phone)
    if digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if len(digits) >= 7:
        return f"{digits[:3]}****{digits[-4:]}"
    return "****"


def mask_phones_in_text(text: Optional[str]) -> str:
    """Mask every mainland mobile number that appears in free text."""
    if not text:
        return text or ""
    return _PHONE_IN_TEXT.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)


def looks_like_phone(value: Optional[str]) -> bool:
    """True for a mainland mobile or an E.164-like number."""
    if not value:
        return False
    digits = re.sub(r"[\s\-()]", "", value)
    return bool(re.fullmatch(r"\+?\d{7,15}", digits))


def sign_body(body: bytes, secret: str) -> str:
    """`X-Signature` value of the SMS webhook contract: `sha256=<hex HMAC>`."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
