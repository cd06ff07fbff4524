"""Mainland China mobile numbers: normalisation, validation and masking."""
from __future__ import annotations

import logging
import re
from typing import Optional

_MOBILE_RE = re.compile(r"^1[3-9]\d{9}$")
_SEPARATORS_RE = re.compile(r"[\s\-\u2010-\u2015\u00a0\u3000().（）]")
# an 11-digit mobile inside free text, optionally with +86/0086 and separators
_IN_TEXT_RE = re.compile(r"(?<!\d)(?:\+?86[\s-]?|0086[\s-]?)?(1[3-9]\d)[\s-]?(\d{4})[\s-]?(\d{4})(?!\d)")


def normalize_phone(text: Optional[str]) -> Optional[str]:
    """Return the 11-digit mainland mobile number in *text*, or None if invalid.

    Tolerates spaces, dashes, dots, parentheses, full-width spaces and a
    ``+86`` / ``0086`` / ``86`` country prefix: ``"+86 138-1234-5678"`` ->
    ``"13812345678"``.
    """
    if not text or not isinstance(text, str):
        return None
    s = text.strip().translate(str.maketrans("０１２３４５６７８９＋", "0123456789+"))
    s = _SEPARATORS_RE.sub("", s)
    if s.startswith("+86"):
        s = s[3:]
    elif s.startswith("0086"):
        s = s[4:]
    elif s.startswith("86") and len(s) == 13:
        s = s[2:]
    return s if _MOBILE_RE.match(s) else None


def is_valid_phone(text: Optional[str]) -> bool:
    """True if *text* is a mainland mobile number (see :func:`normalize_phone`)."""
    return normalize_phone(text) is not None


def mask_phone(phone: Optional[str]) -> str:
    """Mask a phone number for logs: ``13812345678`` -> ``138****5678``."""
    if not phone:
        return ""
    n = normalize_phone(phone)
    if n:
        return f"{n[:3]}****{n[7:]}"
    digits = re.sub(r"\D", "", phone)
    if len(digits) >= 7:
        return f"{digits[:3]}****{digits[-4:]}"
    return "****"


def mask_phones_in_text(text: str) -> str:
    """Mask every mainland mobile number found anywhere in *text*."""
    return _IN_TEXT_RE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)


class PhoneMaskingFilter(logging.Filter):
    """Logging filter that masks phone numbers in every record's message."""

    def filter(self, record: logging.LogRecord) -> bool:  # noqa: A003
        try:
            msg = record.getMessage()
        except Exception:  # pragma: no cover - malformed record
            return True
        masked = mask_phones_in_text(msg)
        if masked != msg:
            record.msg, record.args = masked, None
        return True


def install_log_masking(logger: Optional[logging.Logger] = None) -> None:
    """Attach :class:`PhoneMaskingFilter` to *logger*'s handlers (root by default)."""
    logger = logger or logging.getLogger()
    flt = PhoneMaskingFilter()
    for h in logger.handlers:
        if not any(isinstance(f, PhoneMaskingFilter) for f in h.filters):
            h.addFilter(flt)
