"""The staff clients of the back-office tests (Support, Ops, a superuser), for the attacks here."""

from tests.admin.conftest import ops, superuser, support  # noqa: F401  (pytest fixtures)
