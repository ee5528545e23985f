"""The back-office of the orders app, one module per page family: orders (with their fulfilment and
webhook events), idempotency records and Zoho contacts in ``orders.py``; subscriptions in
``subscriptions.py``. Importing them registers their ModelAdmins with the admin site."""

from orders.admin import orders, subscriptions

__all__ = ["orders", "subscriptions"]
