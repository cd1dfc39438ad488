"""The order service's use cases, one module per area; ``OrderService`` (service.py)
combines them."""
