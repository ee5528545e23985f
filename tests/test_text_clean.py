"""text_clean: whatever a peer answered becomes text PostgreSQL stores, cut to size."""

from __future__ import annotations

import json

import pytest
from django.db import connection

from core.text import pii_masked, text_clean


@pytest.mark.parametrize(
    "raw",
    [b"ok\x00", b"\xff\xfe bad utf-8", "lone \ud800 surrogate", "nul \x00 in text", b"\x00" * 10_000_000, "\x1b[31m"],
)
@pytest.mark.django_db
def test_cleaned_text_is_stored_by_postgresql_and_cut(raw):
    cleaned = text_clean(raw, max_chars=2048)
    assert len(cleaned) <= 2048
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::text, jsonb_build_object('e', %s::text)", [cleaned, cleaned])
        stored, as_json = cursor.fetchone()
    assert stored == cleaned
    assert json.loads(as_json) == {"e": cleaned}


def test_printable_text_newlines_and_tabs_are_kept():
    assert text_clean("Sales order SO-1\n\tconfirmed é", max_chars=100) == "Sales order SO-1\n\tconfirmed é"
    assert text_clean(b"a\x00b\xff", max_chars=10) == "a\ufffdb\ufffd"
    assert text_clean("é" * 5000, max_chars=3) == "ééé"
    assert text_clean(None, max_chars=3) == ""


def test_emails_and_phones_in_a_third_party_text_are_masked():
    text = "Contact ada.obi@example.com with phone +234 803 123 4567 (or 08031234567) exists; id 4815000000044208"
    masked = pii_masked(text)
    assert "ada.obi" not in masked and "a***@example.com" in masked
    assert "123 4567" not in masked and "08031234567" not in masked
    assert "+234****567" in masked and "080****567" in masked
    # Zoho's ids are long digit runs too; they stay readable only where they are not phone-like.
    assert pii_masked("Sales order SO-00012 refused (code 1001)") == "Sales order SO-00012 refused (code 1001)"
