"""The suite's events, one module per producer (``shared.events.order`` …), each event
declared once in the catalog (``shared.events.catalog``)."""

from shared.events.catalog import EventType, all_events, by_subject

__all__ = ["EventType", "all_events", "by_subject"]
