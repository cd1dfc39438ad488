"""The identity use cases, one module per area (org, dealer_import, tags, users,
sessions, assignments, scope, audit); each use case names its collaborators in its
signature (ports.py declares them); access.py holds what they share: who may see what,
and the audit entry every change writes."""
