"""FastStream brokers for tests and tools: the project's connection settings, masked logs."""

from __future__ import annotations

import logging
from typing import Any

from faststream.kafka import KafkaBroker
from faststream.security import (
    BaseSecurity,
    SASLOAuthBearer,
    SASLPlaintext,
    SASLScram256,
    SASLScram512,
)

from shared.kafka import kafka_client_options
from shared.settings import KafkaSettings


def faststream_security(kafka: KafkaSettings) -> BaseSecurity | None:
    """The same TLS/SASL choice as `kafka_client_options`, in FastStream's terms."""
    ssl_context = kafka_client_options(kafka).get("ssl_context")
    use_ssl = kafka.security_protocol in ("SSL", "SASL_SSL")
    secret = kafka.password()
    password = secret.get_secret_value() if secret else ""
    username = kafka.sasl_username or ""
    match kafka.sasl_mechanism:
        case None:
            return BaseSecurity(ssl_context=ssl_context, use_ssl=use_ssl) if use_ssl else None
        case "PLAIN":
            return SASLPlaintext(username, password, ssl_context=ssl_context, use_ssl=use_ssl)
        case "SCRAM-SHA-256":
            return SASLScram256(username, password, ssl_context=ssl_context, use_ssl=use_ssl)
        case "SCRAM-SHA-512":
            return SASLScram512(username, password, ssl_context=ssl_context, use_ssl=use_ssl)
        case "OAUTHBEARER":
            return SASLOAuthBearer(ssl_context=ssl_context, use_ssl=use_ssl)


def make_broker(kafka: KafkaSettings, *, worker: str, **options: Any) -> KafkaBroker:
    """A FastStream broker whose logs go through the project's masked structlog pipeline."""
    return KafkaBroker(
        kafka.bootstrap_list,
        client_id=f"{kafka.client_id}-{worker}",
        security=faststream_security(kafka),
        logger=logging.getLogger(f"regbridge.faststream.{worker}"),
        request_timeout_ms=kafka.request_timeout_ms,
        **options,
    )
