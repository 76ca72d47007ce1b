"""Session-wide real infrastructure: a Kafka broker and PostgreSQL, never mocks.

On a laptop without Java/Docker the integration tests skip; in CI (``CI`` set) a broker or database
that cannot be provided fails the run instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import NoReturn

import pytest

from services.devstack.infra import InfrastructureError, provide_kafka, provide_postgres

IN_CI = os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def _unavailable(what: str, why: str) -> NoReturn:
    message = f"{what} unavailable: {why}"
    if IN_CI:
        pytest.fail(message + " (CI must run integration tests, not skip them)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """A real Kafka broker's bootstrap address for the whole test session."""
    try:
        manager = provide_kafka()
        provided = manager.__enter__()
    except InfrastructureError as exc:
        _unavailable("Kafka broker", str(exc))
    try:
        yield provided.address
    finally:
        manager.__exit__(None, None, None)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL (SQLAlchemy asyncpg URL) for the whole test session."""
    try:
        manager = provide_postgres()
        provided = manager.__enter__()
    except InfrastructureError as exc:
        _unavailable("PostgreSQL", str(exc))
    if provided is None:
        manager.__exit__(None, None, None)
        _unavailable(
            "PostgreSQL", "no server binaries installed and no REGBRIDGE_TEST_DATABASE_URL"
        )
    try:
        yield provided.address
    finally:
        manager.__exit__(None, None, None)


@pytest.fixture
def unique_name() -> str:
    """A fresh suffix so every test has topics and groups of its own."""
    return uuid.uuid4().hex[:12]
