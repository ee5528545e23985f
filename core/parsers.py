"""The partner API's JSON parser: DRF's, plus the refusals that keep hostile bodies from a 500.

On top of DRF's ``JSONParser`` (strict: no ``NaN``/``Infinity``): an unknown charset, JSON nested
deeper than ``MAX_DEPTH`` (Python's parser would raise ``RecursionError`` a few hundred levels
further down), strings that are not Unicode text (a lone surrogate such as ``"\\ud800"``, which
cannot be encoded for the idempotency fingerprint nor stored) and an object naming a key twice
(Python keeps the last; a proxy or log reader in front of us may read the first, and the two would
see different orders) are ``MALFORMED_JSON``; a NUL character anywhere, which PostgreSQL refuses in
text and jsonb, is ``VALIDATION_ERROR``. Every body under /t2mobile/ goes through here before any
view code sees it.
"""

from __future__ import annotations

import codecs
import json

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.utils import json as drf_json

from core.errors import ValidationFailed

MAX_DEPTH = 32  # the contract's bodies are two levels deep; metadata is a flat object


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def json_refusal(document) -> tuple[str, str] | None:
    """``("malformed" | "nul", where)`` when ``document`` must be refused, else None.

    ``where`` is the field's dotted path (``metadata.campaign``; ``body`` for the top level), for the
    error's ``details``. Iterative, so that no depth makes it recurse.
    """
    stack = [(document, 1, "")]
    while stack:
        value, depth, where = stack.pop()
        if depth > MAX_DEPTH:
            return "malformed", where or "body"
        if isinstance(value, dict):
            for key, item in value.items():
                path = f"{where}.{key}" if where else str(key)
                stack.append((key, depth, where))
                stack.append((item, depth + 1, path))
        elif isinstance(value, list):
            stack.extend(
                (item, depth + 1, f"{where}.{index}" if where else str(index)) for index, item in enumerate(value)
            )
        elif isinstance(value, str):
            if not _is_text(value):
                return "malformed", where or "body"
            if "\x00" in value:
                return "nul", where or "body"
    return None


def _object_without_duplicates(pairs: list[tuple[str, object]]) -> dict:
    document = dict(pairs)
    if len(document) != len(pairs):
        raise ValueError("an object names a key twice")
    return document


class PartnerJsonParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding") or "utf-8"
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise ParseError("JSON parse error - unknown charset") from None
        try:
            # DRF's JSONParser.parse, with the duplicate-key refusal (and strict constants, as DRF's)
            document = json.load(
                codecs.getreader(encoding)(stream),
                parse_constant=drf_json.strict_constant,
                object_pairs_hook=_object_without_duplicates,
            )
        except (RecursionError, UnicodeError):
            raise ParseError("JSON parse error - nested too deeply or not text") from None
        except ValueError as error:
            raise ParseError(f"JSON parse error - {error}") from None
        refusal = json_refusal(document)
        if refusal is None:
            return document
        kind, where = refusal
        if kind == "malformed":
            raise ParseError("JSON parse error - nested too deeply or not valid Unicode text")
        # the path is made of the caller's own keys: only when it is printable text is it echoed
        field = where if _is_text(where) and where.isprintable() and "\x00" not in where else "body"
        raise ValidationFailed(details={field[:200]: ["NUL characters are not accepted."]})
