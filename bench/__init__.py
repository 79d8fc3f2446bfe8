"""Benchmarks of Dossier against a bare FastAPI + asyncpg baseline: `python -m bench`."""
