"""structlog, configured once: JSON off a terminal, pretty on one, identity numbers masked."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from shared.client_noise import ClientNoise
from shared.identifiers import mask_personal_ids
from shared.settings import LogFormat


def mask_identity_numbers(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    """Mask every personnummer/samordningsnummer in the event (keys, values, nested)."""
    return {key: _mask(value) for key, value in event_dict.items()}


def _mask(value: Any) -> Any:
    if isinstance(value, str):
        return mask_personal_ids(value)
    if isinstance(value, bytes):
        return mask_personal_ids(value.decode("utf-8", "replace"))
    if isinstance(value, int) and not isinstance(value, bool) and value >= 10**9:
        return mask_personal_ids(str(value))
    if isinstance(value, Mapping):
        return {_mask(k): _mask(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_mask(v) for v in value]
    if isinstance(value, BaseException):
        return mask_personal_ids(repr(value))
    return value


def _render_exception_then_mask(
    logger: WrappedLogger, name: str, event_dict: MutableMapping[str, Any]
) -> EventDict:
    """Tracebacks are text too: render them first so the mask sees them."""
    rendered = structlog.processors.format_exc_info(logger, name, event_dict)
    return mask_identity_numbers(logger, name, rendered)


def configure_logging(level: str = "INFO", fmt: LogFormat = LogFormat.AUTO) -> None:
    """Configure structlog and the standard library (aiokafka, FastStream) to share one pipeline."""
    use_json = fmt is LogFormat.JSON or (fmt is LogFormat.AUTO and not sys.stderr.isatty())
    shared_processors: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    final: list[Processor] = [_render_exception_then_mask, renderer]

    structlog.configure(
        processors=[
            *shared_processors,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared_processors,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler.addFilter(ClientNoise())  # the Kafka client's retries: first line, then summaries
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Libraries that attach handlers of their own (FastStream does, where tests and tools use
    # it) would print around the mask: send every logger through the root handler instead.
    with contextlib.suppress(ImportError):  # FastStream is not installed with the workers
        import faststream.kafka  # noqa: F401  (creates its module loggers before the sweep)

    for existing in list(logging.Logger.manager.loggerDict.values()):
        if isinstance(existing, logging.Logger) and existing.handlers:
            existing.handlers.clear()
            existing.propagate = True
    for noisy in ("aiokafka", "kafka", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    return structlog.stdlib.get_logger(name)
