"""Fixtures many integration tests share: ledgers, the register double, HSA and GVR sandboxes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from services.devstack.infra import InfrastructureError, LocalKafka, LocalPostgres
from services.sandboxes.gvr import GvrSandbox
from services.sandboxes.hsa import HsaSandbox
from shared.delivery.ledger import Ledger
from tests.conftest import IN_CI
from tests.support.catalog import SEED, UNITS
from tests.support.register_double import RegisterDouble


async def _ledger(url: str) -> AsyncIterator[Ledger]:
    instance = Ledger.from_url(url)
    await instance.create_schema()
    yield instance
    await instance.close()


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[Ledger]:
    """A fresh ledger on SQLite (a file of the test's own)."""
    async for instance in _ledger(f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"):
        yield instance


@pytest.fixture(params=["sqlite", "postgres"])
def any_ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The ledger's URL on each backend in turn: SQLite, then the session's PostgreSQL."""
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture
async def any_ledger(any_ledger_url: str) -> AsyncIterator[Ledger]:
    """A fresh ledger on each backend in turn (PostgreSQL's tables are shared: use unique
    register names)."""
    async for instance in _ledger(any_ledger_url):
        yield instance


@pytest.fixture(scope="module")
def double_server() -> Iterator[RegisterDouble]:
    with RegisterDouble() as server:
        yield server


@pytest.fixture
def double(double_server: RegisterDouble) -> RegisterDouble:
    """The module's register double, reset: no records, no log, no faults."""
    double_server.reset()
    return double_server


@pytest.fixture(scope="module")
def hsa_sandbox() -> Iterator[HsaSandbox]:
    """HSA with the shared generated directory (no notifications)."""
    with HsaSandbox(UNITS, seed=SEED) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def gvr_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GvrSandbox]:
    """GVR over mutual TLS, knowing the kombikas of the shared generated directory."""
    certs = tmp_path_factory.mktemp("gvr-certs")
    with GvrSandbox(UNITS, seed=SEED, certs_dir=certs) as sandbox:
        yield sandbox


@pytest.fixture
def stoppable_postgres() -> Iterator[LocalPostgres]:
    """A PostgreSQL of the test's own that it may stop and start (a ledger outage)."""
    try:
        postgres = LocalPostgres()
    except InfrastructureError as exc:
        if IN_CI:
            pytest.fail(f"{exc} (CI must run the outage tests, not skip them)", pytrace=False)
        pytest.skip(str(exc))
    with postgres:
        yield postgres


@pytest.fixture
def stoppable_kafka() -> Iterator[LocalKafka]:
    """A broker of the test's own that it may stop and start again on its data."""
    try:
        kafka = LocalKafka()
        kafka.__enter__()
    except InfrastructureError as exc:
        if IN_CI:
            pytest.fail(f"{exc} (CI must run the restart tests, not skip them)", pytrace=False)
        pytest.skip(str(exc))
    try:
        yield kafka
    finally:
        kafka.__exit__(None, None, None)
