"""``manage.py redrive_order <orderId>`` / ``--stuck``: queue provisioning again."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from orders.models import Order
from orders.selectors import stuck_orders
from orders.transitions import OrderStateError, order_redrive


class Command(BaseCommand):
    help = "Re-drive provisioning of one order (FAILED, stuck or on hold) or of every stuck order."

    def add_arguments(self, parser):
        parser.add_argument("order_id", nargs="?", help="the T2Mobile orderId")
        parser.add_argument("--partner", default=None, help="partner_id (default: PARTNER_ID)")
        parser.add_argument("--stuck", action="store_true", help="every order PROCESSING for over 15 minutes")

    def handle(self, *args, order_id=None, partner=None, stuck=False, **options):
        if bool(order_id) == bool(stuck):
            raise CommandError("Give an orderId or --stuck (not both).")
        if stuck:
            orders = list(stuck_orders())
        else:
            orders = list(Order.objects.filter(partner__partner_id=partner or settings.PARTNER_ID, order_id=order_id))
            if not orders:
                raise CommandError(f"No order {order_id!r}.")
        refused = []
        for order in orders:
            try:
                order_redrive(order=order)
            except OrderStateError as exc:
                if not stuck:
                    raise CommandError(f"{order.order_id}: {exc}") from None
                # One stuck order that cannot be re-driven (fulfilled meanwhile, say) never stops the rest.
                refused.append(order.order_id)
                self.stderr.write(f"{order.order_id}: {exc}")
                continue
            self.stdout.write(f"{order.order_id}: re-driven, provisioning queued")
        if stuck:
            self.stdout.write(f"{len(orders) - len(refused)} of {len(orders)} stuck order(s) re-driven.")
        if refused:
            raise CommandError(f"{len(refused)} order(s) could not be re-driven (listed above).")
