"""Telling customers (hospitals, clinics, pharmacies) apart by name: the features and
similarity of normalized names (``matching``) and the in-memory index that finds
candidates among millions (``index``). Registration's duplicate check and flow's
hospital resolution use the same code, so a name that registration calls a duplicate
resolves to the same customer in a sell-through file. Names are normalized first with
``shared.text.normalize_name``."""
