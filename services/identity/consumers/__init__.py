"""Every event the identity service reacts to: none from other services. Identity's own
events reach every replica through ``shared.revocation.IdentityEvents`` (wired in
bootstrap.py): revocations recorded by another replica, and its changes, which clear
this replica's scope cache."""

from __future__ import annotations

from shared.bus.consumer import Subscription

SUBSCRIPTIONS: list[Subscription] = []
