"""The event catalog as a table (docs/events.md): every event, its producer, the
durable consumers that subscribe to it, and what it means. ``python -m suite.catalog``
rewrites the file; a test fails while it is out of date."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from shared.bus.consumer import Subscription
from shared.events import all_events
from shared.revocation import REVOKING, SCOPE_CHANGES
from shared.settings import SERVICES

DOC = Path(__file__).resolve().parent.parent / "docs" / "events.md"


def subscriptions() -> dict[str, list[Subscription]]:
    """Each service's subscriptions (``services.<svc>.consumers.SUBSCRIPTIONS``)."""
    found = {}
    for service in SERVICES:
        try:
            module = importlib.import_module(f"services.{service}.consumers")
        except ModuleNotFoundError:
            module = None
        found[service] = list(getattr(module, "SUBSCRIPTIONS", []))
    return found


def render() -> str:
    consumers: dict[str, list[str]] = {}
    for subscribed in subscriptions().values():
        for subscription in subscribed:
            for event in subscription.events:
                consumers.setdefault(event.subject, []).append(f"`{subscription.durable}`")
    # Not durable consumers: every process listens for these to keep its security state.
    for event in REVOKING:
        consumers.setdefault(event.subject, []).append("every process (revoked tokens)")
    for event in SCOPE_CHANGES:
        consumers.setdefault(event.subject, []).append("every process (scope cache)")
    lines = [
        "# Events",
        "",
        "Generated from the catalog (`shared/events/`) and every service's",
        "`consumers/` by `python -m suite.catalog`; do not edit by hand. Subjects are",
        "`qudao.<producer>.<entity>.<verb>`, payloads are in",
        "`protos/qudao/<producer>/v1/events.proto`, one JetStream stream per producer.",
        "",
        "| event | subject | producer | consumers | what it means |",
        "|---|---|---|---|---|",
    ]
    for event in all_events():
        lines.append(f"| {event.name} | `{event.subject}` | {event.producer} | "
                     f"{', '.join(sorted(consumers.get(event.subject, []))) or '—'} | "
                     f"{event.meaning} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    DOC.write_text(render(), encoding="utf-8")
    print(f"wrote {DOC}", file=sys.stderr)


if __name__ == "__main__":
    main()
