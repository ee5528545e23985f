"""Benchmark-only URLs: the real API plus a bare DRF endpoint that does one INSERT, the baseline
that POST /t2mobile/fulfilment is compared against. Never used outside bench/intake.py."""

import json

from django.db import connection
from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from t2mobile_portal.urls import urlpatterns as real_urlpatterns


class BareInsertView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    def post(self, request):
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO bench_bare (body) VALUES (%s)", [json.dumps(request.data)])
        return Response({"success": True}, status=202)


urlpatterns = [path("bench/bare", BareInsertView.as_view()), *real_urlpatterns]
