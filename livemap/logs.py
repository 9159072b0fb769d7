"""Logging setup; uvicorn's access log prints query strings, which carry tokens: redact them."""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import unquote_plus

_SECRET_NAMES = frozenset({"token", "t", "key", "api_key"})
_PARAM = re.compile(r"(?<=[?&])([^=&\s\"]+)=[^&\s\"]*")


def redact(text: str) -> str:
    """`/ws/driver?token=abc&x=1` -> `/ws/driver?token=[redacted]&x=1`.

    A parameter's name is percent-decoded first, exactly as Starlette's `query_params` (and so
    authentication) decodes it: `?%74=TOKEN` authenticates as `t`, so it is redacted as `t`.
    """
    return _PARAM.sub(
        lambda m: f"{m.group(1)}=[redacted]" if unquote_plus(m.group(1)).lower() in _SECRET_NAMES else m.group(0), text
    )


class RedactSecrets(logging.Filter):
    """Rewrites a record's arguments so no token reaches a log line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def log_config(level: str = "info") -> dict[str, Any]:
    """uvicorn's logging config with the redaction filter on every handler."""
    from uvicorn.config import LOGGING_CONFIG

    config: dict[str, Any] = {**LOGGING_CONFIG}
    config["filters"] = {"redact": {"()": RedactSecrets}}
    config["handlers"] = {name: {**h, "filters": ["redact"]} for name, h in LOGGING_CONFIG["handlers"].items()}
    config["loggers"] = {
        **LOGGING_CONFIG["loggers"],
        "livemap": {"handlers": ["default"], "level": level.upper(), "propagate": False},
    }
    return config
