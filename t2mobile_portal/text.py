"""Third-party text made fit to store: what a receiver or Zoho answered, cut and cleaned.

PostgreSQL refuses a NUL character in ``text`` and ``jsonb`` and any string that is not valid
UTF-8 (a lone surrogate such as ``"\\ud800"``); a peer's answer may contain either, or be megabytes
long. ``text_clean`` turns bytes or a string into printable text of at most ``max_chars``
characters: invalid UTF-8 becomes U+FFFD, NUL and the other control characters (but newline and
tab) become U+FFFD, lone surrogates too. It never raises, so recording an answer never fails.
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
