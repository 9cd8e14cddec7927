"""The HTTP API outside the proxy path: admin, ingestion and usage routes (FastAPI)."""
