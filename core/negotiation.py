"""Content negotiation that never answers 406: an ``Accept`` we cannot satisfy gets our JSON.

The contract is JSON in and out and has no 406 code; DRF's default negotiation raises
``NotAcceptable`` for ``Accept: text/html`` on a JSON-only view, which would otherwise escape as a 500.
RFC 9110 (12.5.1) lets a server disregard an ``Accept`` it cannot honour, so we do.
"""

from __future__ import annotations

from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation


class JsonFallbackContentNegotiation(DefaultContentNegotiation):
    def select_renderer(self, request, renderers, format_suffix=None):
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except NotAcceptable:
            renderer = renderers[0]
            return renderer, renderer.media_type
