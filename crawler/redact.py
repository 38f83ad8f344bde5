"""Keep credentials out of every log line, report and manifest.

Listing URLs carry the account (`login=`, `user_id=`, `api_key=`, `password_hash=`), and Scrapy
logs URLs at every level from errors to -vv's per-request lines. Every record the worker logs is
masked as it is made (`redact_records`); what the crawl writes is built from redacted text.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import quote, quote_plus

MASK = "***"
CREDENTIAL_PARAMS = ("api_key", "login", "user_id", "password", "password_hash")
_PARAM = re.compile(r"(?i)\b(" + "|".join(CREDENTIAL_PARAMS) + r")=([^&\s\"'<>]*)")


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """`text` with credential query parameters and the `secrets` themselves (also URL-encoded) masked."""
    text = _PARAM.sub(lambda m: f"{m.group(1)}={MASK}", text)
    for secret in secrets:
        if secret:
            for spelling in {secret, quote(secret, safe=""), quote_plus(secret)}:
                text = text.replace(spelling, MASK)
    return text


def redact_records(secrets: tuple[str, ...]) -> None:
    """Mask credentials in every log record this process creates, whoever logs it and however it is
    formatted later: Scrapy replaces its log handlers as a crawl starts, so a formatter or handler
    filter could be lost; the record factory is not."""
    make = logging.getLogRecordFactory()

    def factory(*args, **kwargs) -> logging.LogRecord:
        record = make(*args, **kwargs)
        try:
            record.msg, record.args = redact(record.getMessage(), secrets), None
        except Exception:  # noqa: BLE001 - a bad format string: keep the record as it came
            record.msg = redact(str(record.msg), secrets)
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info), secrets)
        return record

    logging.setLogRecordFactory(factory)
