"""Third-party text made fit to store: what a receiver or Zoho answered, cut and cleaned.

PostgreSQL refuses a NUL character in ``text`` and ``jsonb`` and any string that is not valid
UTF-8 (a lone surrogate such as ``"\\ud800"``); a peer's answer may contain either, or be megabytes
long. ``text_clean`` turns bytes or a string into printable text of at most ``max_chars``
characters: invalid UTF-8 becomes U+FFFD, NUL and the other control characters (but newline and
tab) become U+FFFD, lone surrogates too. It never raises, so recording an answer never fails.

``pii_masked`` masks what looks like an email address or a phone number in such a text (Zoho echoes
the customer's details in some of its errors), so that it can be logged and shown to staff.
"""

from __future__ import annotations

import re

_REPLACEMENT = "\ufffd"
# C0 controls but tab and newline, DEL, C1 controls, and lone surrogates.
_UNSTORABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def text_clean(value: bytes | str | None, *, max_chars: int) -> str:
    """``value`` as text PostgreSQL stores, cut to ``max_chars`` characters (see the module docstring)."""
    if value is None:
        return ""
    if isinstance(value, bytes | bytearray | memoryview):
        # A UTF-8 character is at most 4 bytes: decode no more than the excerpt can keep.
        text = bytes(value[: max_chars * 4]).decode("utf-8", errors="replace")
    else:
        text = str(value)
    return _UNSTORABLE.sub(_REPLACEMENT, text[:max_chars])


_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
# A phone: 8 or more digits, maybe after a +, maybe broken by spaces, dots, dashes or brackets.
_PHONE = re.compile(r"(?<![\w.])(\+?\d[\d ().-]{6,}\d)(?![\w])")


def _phone_masked(match: re.Match) -> str:
    digits = re.sub(r"\D", "", match.group(1))
    if len(digits) < 8:
        return match.group(0)
    lead = "+" if match.group(1).startswith("+") else ""
    return f"{lead}{digits[:3]}****{digits[-3:]}"


def pii_masked(text: str) -> str:
    """``text`` with email addresses and phone numbers masked (``a***@example.com``, ``+234****567``)."""
    return _PHONE.sub(_phone_masked, _EMAIL.sub(r"\1***@\2", text))
