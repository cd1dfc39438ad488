"""The registration use cases, one module per area (customers and the duplicate check,
the dealer projection, registrations, conflicts, leads, the pipeline, authorizations,
the scheduler, the name index); each use case names its collaborators in its signature
(ports.py declares them)."""
