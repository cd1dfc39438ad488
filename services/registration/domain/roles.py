"""Who may do what in registration, by role (on top of the dealer scope identity
resolves)."""

from __future__ import annotations

HQ_DECIDERS = ("hq_admin", "region_manager")
LEAD_ADMINS = ("hq_admin", "region_manager", "customer_service")
CUSTOMER_EDITORS = ("hq_admin", "region_manager", "customer_service", "channel_manager")
GRANTERS = ("hq_admin", "channel_manager")
APPROVERS = ("hq_admin", "region_manager", "channel_manager")
DEALER_STAFF = ("dealer_admin", "dealer_sales")
RECALLERS = (*DEALER_STAFF, "hq_admin")
# Who works a registration's pipeline and the dealer's leads (finance does not).
PIPELINE = (*DEALER_STAFF, "hq_admin", "region_manager", "channel_manager")
# Who imports alias lists of customers (HQ's customer master staff).
ALIAS_EDITORS = ("hq_admin", "region_manager", "customer_service")
