"""The built-in job types; importing this package registers them."""

from backend.worker.handlers import case_export, extract_text, webhook_deliver

__all__ = ["case_export", "extract_text", "webhook_deliver"]
