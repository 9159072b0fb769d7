"""Notifications out: the outbox worker and its channels (webhook, email, SMS), one module each."""

from __future__ import annotations

from livemap.notify.base import DeliveryError, Notice
from livemap.notify.worker import Worker

__all__ = ["DeliveryError", "Notice", "Worker"]
