"""The double as a worker: its spec, named as the test wants (topics and ledger follow the name)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from pydantic import BaseModel

from shared.spec import Wiring, WorkerContext, WorkerSpec
from tests.support.double_register.settings import DoubleSettings
from tests.support.double_register.worker import DoubleWorker


class DoubleEventModel(BaseModel):
    """What its input topic carries (tests/support/double_register/worker.py parses it)."""

    EVENT_TYPE: str = "double.event"


def double_spec(name: str = "double") -> WorkerSpec[DoubleSettings]:
    @asynccontextmanager
    async def build(settings: DoubleSettings, _context: WorkerContext) -> AsyncIterator[Wiring]:
        worker = DoubleWorker(settings.url, batch=settings.batch)
        worker.name = name
        try:
            yield Wiring(worker)
        finally:
            await worker.aclose()

    return WorkerSpec(
        name=name,
        summary="test events to the register double",
        settings=DoubleSettings,
        event_types=(DoubleEventModel,),
        input_purpose="test events",
        build=build,
    )
