"""The identity service's use cases, one module per area; ``IdentityService``
(service.py) combines them."""
