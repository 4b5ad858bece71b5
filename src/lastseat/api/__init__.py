"""The HTTP service: a thin FastAPI layer that parses, calls the service and maps the result."""
