"""Logging setup; uvicorn's access log prints query strings, which carry tokens: redact them."""

from __future__ import annotations

import json
import logging
import re
import time
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


class JsonLines(logging.Formatter):
    """One JSON object per line (`LIVEMAP_JSON_LOGS=1`): what log shippers (Loki, Elasticsearch...) parse."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def log_config(level: str = "info", json_lines: bool = False) -> dict[str, Any]:
    """uvicorn's logging config with the redaction filter on every handler; JSON lines if asked."""
    from uvicorn.config import LOGGING_CONFIG

    config: dict[str, Any] = {**LOGGING_CONFIG}
    if json_lines:
        config["formatters"] = {name: {"()": JsonLines} for name in LOGGING_CONFIG["formatters"]}
    config["filters"] = {"redact": {"()": RedactSecrets}}
    config["handlers"] = {name: {**h, "filters": ["redact"]} for name, h in LOGGING_CONFIG["handlers"].items()}
    config["loggers"] = {
        **LOGGING_CONFIG["loggers"],
        "livemap": {"handlers": ["default"], "level": level.upper(), "propagate": False},
    }
    return config
