"""The repository's documentation stands alone (issue 22, point 2): a clone holds every page the
README and docs/ point to, nothing sends the reader to the team's private ``../shared/`` folder, and
the reference pages name what the code has: every error code with its status in
docs/partner-api.md, every partner API path there, and every setting read by settings.py in
docs/operations.md or .env.example.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from core.errors import ERROR_CODES

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PARTNER_API = ROOT / "docs" / "partner-api.md"
OPERATIONS = ROOT / "docs" / "operations.md"

LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//|#)", re.IGNORECASE)


def _text(page: Path) -> str:
    return page.read_text(encoding="utf-8")


def _relative_links(page: Path) -> list[str]:
    prose = FENCE.sub("", _text(page))  # a link-like string in a code block is no link
    return [target for target in LINK.findall(prose) if not EXTERNAL.match(target)]


def test_there_are_pages_to_check():
    assert PARTNER_API in PAGES and OPERATIONS in PAGES and (ROOT / "docs" / "architecture.md") in PAGES


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves_to_a_file_in_the_repository(page):
    broken = []
    for target in _relative_links(page):
        path = target.split("#", 1)[0].split("?", 1)[0]
        resolved = (page.parent / path).resolve()
        if not resolved.is_relative_to(ROOT) or not resolved.exists():
            broken.append(target)
    assert not broken, f"{page.relative_to(ROOT)} links to what a clone does not hold: {broken}"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(ROOT).as_posix())
def test_no_page_sends_the_reader_to_the_shared_folder(page):
    text = _text(page)
    for needle in ("../shared", "shared/spec"):
        assert needle not in text, f"{page.relative_to(ROOT)} mentions {needle}"


def test_every_error_code_is_in_the_partner_api_reference_with_its_status():
    lines = _text(PARTNER_API).splitlines()
    missing = []
    for code, status in ERROR_CODES.items():
        named = re.compile(rf"(?<![A-Z_]){code}(?![A-Z_])")
        with_status = re.compile(rf"(?<!\d){status}(?!\d)")
        if not any(named.search(line) and with_status.search(line) for line in lines):
            missing.append(f"{status} {code}")
    assert not missing, f"docs/partner-api.md lacks, each on one line with its status: {missing}"


def _partner_api_paths(patterns, prefix: str = "") -> list[str]:
    """Every named URL pattern as a path (``/t2mobile/orders/{orderId}``), nested includes too."""
    paths = []
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            paths += _partner_api_paths(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern) and pattern.name:
            paths.append(_readable(prefix + str(pattern.pattern)))
    return [path for path in paths if path.startswith("/t2mobile/")]


def _readable(regex_or_route: str) -> str:
    path = regex_or_route.replace("^", "").replace("$", "")
    path = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", path)  # regex groups
    path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", path)  # route converters
    path = re.sub(r"/\?$", "", path)  # the optional trailing slash
    path = "/" + path.lstrip("/")
    assert not re.search(r"[\\()\[\]*+?|]", path), f"a URL pattern this test cannot read: {regex_or_route}"
    return path


def test_every_partner_api_path_is_named_in_the_partner_api_reference():
    paths = _partner_api_paths(get_resolver().url_patterns)
    assert "/t2mobile/orders/{orderId}" in paths and "/t2mobile/health/live" in paths
    text = _text(PARTNER_API)
    missing = [path for path in paths if not re.search(re.escape(path) + r"(?![\w/{])", text)]
    assert not missing, f"docs/partner-api.md does not name: {missing}"


def _settings_env_names() -> set[str]:
    """The first argument of every ``env(...)`` / ``env.<cast>(...)`` call in settings.py."""
    tree = ast.parse((ROOT / "t2mobile_portal" / "settings.py").read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        is_env = (isinstance(func, ast.Name) and func.id == "env") or (
            isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "env"
        )
        first = node.args[0]
        if is_env and isinstance(first, ast.Constant) and isinstance(first.value, str):
            names.add(first.value)
    return names


def _environ_names(relative: str) -> set[str]:
    """The names read with ``os.environ.get("NAME", …)`` in a file."""
    tree = ast.parse((ROOT / relative).read_text(encoding="utf-8"))
    return {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "get"
        and isinstance(node.func.value, ast.Attribute)
        and node.func.value.attr == "environ"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    }


def test_env_example_lists_every_name_the_processes_read():
    names = _settings_env_names() | _environ_names("gunicorn.conf.py") | _environ_names("scripts/run_local.py")
    assert {"PORT", "GUNICORN_THREADS", "FORWARDED_ALLOW_IPS", "ZOHO_SANDBOX_PORT", "EMAIL_SUBJECT_PREFIX"} <= names
    listed = _text(ROOT / ".env.example")
    missing = sorted(name for name in names if not re.search(rf"^#?\s*{name}=", listed, re.MULTILINE))
    assert not missing, f".env.example does not list: {missing}"


def test_every_setting_read_from_the_environment_is_documented():
    names = _settings_env_names()
    assert {"SECRET_KEY", "DATABASE_URL", "WEBHOOK_RETRY_SCHEDULE", "LOG_FORMAT"} <= names
    documented = _text(OPERATIONS) + "\n" + _text(ROOT / ".env.example")
    missing = sorted(name for name in names if not re.search(rf"(?<![A-Z0-9_]){name}(?![A-Z0-9_])", documented))
    assert not missing, f"neither docs/operations.md nor .env.example names: {missing}"
