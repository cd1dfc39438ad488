"""The registration service's use cases, one module per area; ``RegistrationService``
(service.py) combines them."""
