"""Server-side request forgery past the webhook URL guard (issue 11 item 2, issue 15 item 6).

The attacks: a URL that ``urlsplit`` and ``requests`` read differently
(``https://127.0.0.1:8443\\@93.184.215.14/hook``: the guard checked 93.184.215.14, requests
connected to 127.0.0.1), IPv6 forms that embed a private IPv4, a name that resolves to a private
address, and DNS rebinding (a public answer for the check, a private one for the connection). The
guard now refuses the confusing forms, resolves once and the delivery connects to the checked
address, keeping TLS verification and SNI for the configured name: proved against a real local
HTTPS receiver whose certificate is for that name only.
"""

from __future__ import annotations

import http.server
import socket
import ssl
import subprocess
import threading
from pathlib import Path

import pytest

from webhooks.client import UrlRefused, WebhookClient, webhook_url_check

CONFUSING = [
    "https://127.0.0.1:8443\\@93.184.215.14/hook",  # the reported one
    "https://93.184.215.14\\@127.0.0.1/hook",
    "https://user:pw@93.184.215.14/hook",
    "https://93.184.215.14@127.0.0.1:8443/hook",
    "https://93.184.215.14/ho ok",
    "https://93.184.215.14/\thook",
    "https://93.184.215.14\r\n/hook",
    "https://93.184.215.14/hook\x00",
    " https://93.184.215.14/hook",
    "https://%31%32%37.0.0.1/hook",
    "https://93.184.215.14:99999/hook",
    "https://93.184.215.14:44a/hook",
    "https://xn--nxasmq6b\u00e9.example/hook",  # non-ASCII
    "https://[::1/hook",
]
EMBEDDING_OR_SPECIAL = [
    "https://[64:ff9b::7f00:1]/hook",  # NAT64 of 127.0.0.1
    "https://[64:ff9b::a00:1]/hook",  # NAT64 of 10.0.0.1
    "https://[64:ff9b:1::a00:1]/hook",
    "https://[2002:7f00:1::1]/hook",  # 6to4 of 127.0.0.1
    "https://[2002:a9fe:a9fe::1]/hook",  # 6to4 of 169.254.169.254
    "https://[::127.0.0.1]/hook",  # IPv4-compatible
    "https://[::a00:1]/hook",
    "https://[fec0::1]/hook",  # site-local
    "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hook",  # Teredo
    "https://[::ffff:10.0.0.1]/hook",
    "https://[ff02::1]/hook",
    "https://224.0.0.1/hook",
    "https://240.0.0.1/hook",
    "https://255.255.255.255/hook",
    "https://2130706433/hook",  # 127.0.0.1 written as one number
    "https://0x7f.1/hook",
    "https://[::]/hook",
]


@pytest.mark.parametrize("allow_private", [False, True])
@pytest.mark.parametrize("url", CONFUSING)
def test_urls_that_parsers_read_differently_are_refused_even_where_private_urls_are_allowed(url, allow_private):
    with pytest.raises(UrlRefused):
        webhook_url_check(url, allow_private=allow_private)


@pytest.mark.parametrize("url", EMBEDDING_OR_SPECIAL)
def test_ipv6_forms_embedding_ipv4_and_special_addresses_are_refused_in_production(url):
    with pytest.raises(UrlRefused):
        webhook_url_check(url, allow_private=False)


def fake_resolver(monkeypatch, answers: dict[str, list[list[str]]]):
    """``socket.getaddrinfo`` answering the names in ``answers`` (one list of addresses per call, the
    last repeating) and the real resolver for anything else. Returns the calls per name."""
    real = socket.getaddrinfo
    calls: dict[str, int] = {}

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in answers:
            return real(host, port, *args, **kwargs)
        n = calls.get(host, 0)
        calls[host] = n + 1
        addresses = answers[host][min(n, len(answers[host]) - 1)]
        return [
            (
                socket.AF_INET6 if ":" in a else socket.AF_INET,
                socket.SOCK_STREAM,
                6,
                "",
                (a, port or 443, 0, 0) if ":" in a else (a, port or 443),
            )
            for a in addresses
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return calls


@pytest.mark.parametrize(
    "addresses", [["10.0.0.5"], ["93.184.215.14", "192.168.1.1"], ["fd00::5"], ["64:ff9b::a00:5"], ["127.0.0.1"]]
)
def test_a_name_that_resolves_to_any_private_address_is_refused(monkeypatch, addresses):
    fake_resolver(monkeypatch, {"hooks.partner.test": [addresses]})

    with pytest.raises(UrlRefused, match="non-public"):
        webhook_url_check("https://hooks.partner.test/hook", allow_private=False)


def test_a_name_with_only_public_addresses_passes_and_the_first_is_the_one_to_connect_to(monkeypatch):
    fake_resolver(monkeypatch, {"hooks.partner.test": [["93.184.215.14", "2606:2800:220:1::1"]]})

    checked = webhook_url_check("https://hooks.partner.test:8443/hook?x=1", allow_private=False)

    assert checked.address == "93.184.215.14"
    assert checked.pinned_url == "https://93.184.215.14:8443/hook?x=1"
    assert checked.host_header == "hooks.partner.test:8443"


# --- The connection goes to the checked address, with TLS for the name ------------------------------

NAME = "hooks.partner.test"


def make_certificate(directory: Path, name: str) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            f"/CN={name}",
            "-addext",
            f"subjectAltName=DNS:{name}",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


class TlsReceiver:
    """An HTTPS server on 127.0.0.1 that records TCP connections, SNI names and requests."""

    def __init__(self, cert: Path, key: Path):
        self.connections = 0
        self.server_names: list[str | None] = []
        self.requests: list[tuple[str, str]] = []  # (path, Host header)
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("content-length") or 0))
                receiver.requests.append((self.path, self.headers.get("host")))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        context.sni_callback = lambda sock, name, ctx: self.server_names.append(name)

        class Server(http.server.ThreadingHTTPServer):
            def get_request(self):
                sock, address = self.socket.accept()
                receiver.connections += 1
                return context.wrap_socket(sock, server_side=True), address

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def tls_receiver(tmp_path):
    cert, key = make_certificate(tmp_path, NAME)
    receiver = TlsReceiver(cert, key)
    receiver.ca = cert
    yield receiver
    receiver.close()


@pytest.mark.django_db
def test_the_name_is_resolved_once_and_the_connection_goes_to_the_checked_address(tls_receiver, monkeypatch, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True  # a loopback receiver, as in DEBUG and tests
    # the first answer is our receiver; any second lookup would get an address with no server
    calls = fake_resolver(monkeypatch, {NAME: [["127.0.0.1"], ["127.0.0.2"]]})
    client = WebhookClient(timeout=5, verify=str(tls_receiver.ca))

    result = client.post(url=f"https://{NAME}:{tls_receiver.port}/hook?a=1", body=b"{}", headers={})

    assert result.delivered, result.error
    assert calls[NAME] == 1
    assert tls_receiver.requests == [("/hook?a=1", f"{NAME}:{tls_receiver.port}")]
    assert tls_receiver.server_names == [NAME]  # SNI names the host, not the address


@pytest.mark.django_db
def test_tls_verification_is_kept_for_the_name(tmp_path, tls_receiver, monkeypatch, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    fake_resolver(monkeypatch, {NAME: [["127.0.0.1"]], "other.partner.test": [["127.0.0.1"]]})
    other_ca, _ = make_certificate(tmp_path, "unrelated.test")

    wrong_name = WebhookClient(timeout=5, verify=str(tls_receiver.ca)).post(
        url=f"https://other.partner.test:{tls_receiver.port}/hook", body=b"{}", headers={}
    )
    untrusted = WebhookClient(timeout=5, verify=str(other_ca)).post(
        url=f"https://{NAME}:{tls_receiver.port}/hook", body=b"{}", headers={}
    )
    system_cas = WebhookClient(timeout=5).post(url=f"https://{NAME}:{tls_receiver.port}/hook", body=b"{}", headers={})

    for result in (wrong_name, untrusted, system_cas):
        assert not result.delivered and "SSLError" in result.error
    assert tls_receiver.requests == []


@pytest.mark.django_db
def test_dns_rebinding_to_loopback_after_the_check_never_reaches_the_internal_address(
    tls_receiver, monkeypatch, settings
):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    # public for the guard's lookup, then the attacker's DNS answers loopback (TTL 0)
    calls = fake_resolver(monkeypatch, {NAME: [["93.184.215.14"], ["127.0.0.1"]]})
    client = WebhookClient(timeout=1, verify=str(tls_receiver.ca))

    result = client.post(url=f"https://{NAME}:{tls_receiver.port}/hook", body=b"{}", headers={})

    assert not result.delivered
    assert calls[NAME] == 1
    assert tls_receiver.connections == 0 and tls_receiver.requests == []
