"""The Zoho Inventory integration: one HTTP client, its error model, the shared call budget, the
provisioner that turns a confirmed sales order into a licence, and a local sandbox for ``make run``."""
