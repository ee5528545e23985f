"""The back-office of the orders app, one module per page family: orders (with their fulfilment and
webhook events) in ``orders.py``; idempotency records and Zoho contacts in ``records.py``;
subscriptions in ``subscriptions.py``. Importing them registers their ModelAdmins with the admin site."""

from orders.admin import orders, records, subscriptions

__all__ = ["orders", "records", "subscriptions"]
