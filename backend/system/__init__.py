"""Health, readiness, version and metrics, served at the root."""
