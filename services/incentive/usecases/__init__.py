"""The incentive use cases, one module per area; each use case names its collaborators
in its signature (ports.py declares them)."""
