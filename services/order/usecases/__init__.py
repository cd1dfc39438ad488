"""The order service's use cases, one module per area; each is a function whose
parameters name exactly its collaborators (usecases/ports.py)."""
