"""Dossier: a multi-tenant backend for documents, cases and processing jobs."""

__version__ = "0.1.0"
