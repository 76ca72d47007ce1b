"""A worker as the rest of regbridge knows it: one `WorkerSpec` per register folder, one `Registry`.

The command line (`run`, `topics`, `status`, `dlq`), the local dev stack and the deployment checks
read every worker from the registry; nothing in `shared/` names one.
"""

from __future__ import annotations

from collections.abc import (
    Callable,
    Coroutine,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel

from shared.delivery.clock import Clock
from shared.delivery.worker import Component, RegisterWorker
from shared.settings import CommonSettings, RegbridgeSettings
from shared.topics import EnsureReport, TopicSpec, WorkerTopics, ensure_topics, unique

if TYPE_CHECKING:
    import typer

    from shared.delivery.ledger import Ledger
    from shared.delivery.metrics import Metrics

S = TypeVar("S", bound=RegbridgeSettings)
DemoEvent = tuple[str, dict[str, Any] | bytes]  # (label, event or raw bytes)


@dataclass(frozen=True)
class WorkerContext:
    """What the runtime gives a worker's `build`: its clock, metrics and ledger."""

    clock: Clock
    metrics: Metrics
    ledger: Ledger


@dataclass(frozen=True)
class Wiring:
    """What a worker's `build` hands the runtime: the worker, jobs beside it, readiness parts."""

    worker: RegisterWorker[Any]
    background: Sequence[Callable[[], Coroutine[Any, Any, None]]] = ()
    components: Mapping[str, Component] = field(default_factory=dict)
    # False: an event the worker accepts gets its result later, from elsewhere (a file
    # register reports each event when its file's receipt comes); skips and dead letters still
    # get theirs at once
    results_on_accept: bool = True


@dataclass(frozen=True)
class DevContext:
    """The local stack as a sandbox hook sees it (`make run`)."""

    kafka_bootstrap: str
    units: int  # how many units the generated HSA directory holds (every sandbox shares it)
    seed: int
    state_dir: Path  # where a sandbox may keep files (certificates …)
    port: Callable[[int], int]  # a preferred port, or 0 (any free one) when it is taken


@dataclass(frozen=True)
class DemoContext:
    """What a demo hook draws from: the seed and the units of the generated directory."""

    seed: int
    units: Callable[[], Iterator[Mapping[str, Any]]]  # HSA-shaped unit records


@dataclass(frozen=True)
class Sandbox:
    """A register's sandbox, up: a line for the newcomer, and the environment that reaches it."""

    description: str  # "<register> sandbox at https://127.0.0.1:8443 (…)": where, and how
    env: Mapping[str, str]  # set for every process started after it (the workers)


@dataclass(frozen=True, kw_only=True)
class DevHooks:
    """How `make run` brings a worker up on one machine, and what its demo publishes."""

    # Start the register's sandbox (entered on a stack, left at Ctrl-C).
    sandbox: Callable[[DevContext], AbstractContextManager[Sandbox]] | None = None
    # After every sandbox is up, before the workers start (a first import, say): one line.
    prepare: Callable[[], Coroutine[Any, Any, str]] | None = None
    demo: Callable[[DemoContext], Iterator[DemoEvent]] | None = None
    demo_share: int = 1  # events of this worker per round of the demo
    # Commands a newcomer might run next, given the stack and the environment it set.
    try_next: Callable[[DevContext, Mapping[str, str]], Sequence[str]] = lambda _dev, _env: ()


@dataclass(frozen=True)
class Input:
    """A topic a worker consumes, the event types it carries there, and what they are."""

    topic: str
    event_types: tuple[type[BaseModel], ...]
    purpose: str  # "waiting-list entries from journal systems"


@dataclass(frozen=True, kw_only=True)
class WorkerSpec(Generic[S]):
    """One worker: its name (topic prefix, consumer group, ledger namespace), its settings (their
    class sets the ``REGBRIDGE_<NAME>_`` prefix), the events it consumes, how it is built, and its
    commands and dev hooks."""

    name: str
    summary: str  # one line, for `regbridge run --help` and `topics list`
    settings: type[S]
    event_types: tuple[type[BaseModel], ...]  # what its input topic carries
    input_purpose: str  # "care contacts from journal systems"
    build: Callable[[S, WorkerContext], AbstractAsyncContextManager[Wiring]]
    # Topics it consumes besides its settings' input_topic, in the same consumer group (one
    # whose topic is empty in the settings is not read)
    more_inputs: Callable[[S], Sequence[Input]] = lambda _settings: ()
    results: bool = True  # one result per event on <name>.results.v1
    own_topics: Callable[[S], Sequence[TopicSpec]] = lambda _settings: ()
    commands: Callable[[], typer.Typer] | None = None  # `regbridge <name> …`
    dev: DevHooks | None = None
    schedules: tuple[str, ...] = ()  # kinds of the scheduled jobs it runs (`regbridge status`)

    def load_settings(self) -> S:
        """The worker's settings from its environment (``REGBRIDGE_<NAME>_…``)."""
        return self.settings()

    def inputs(self, settings: S) -> list[Input]:
        """Every topic it consumes: its input topic first, then the others that are set."""
        main = Input(settings.input_topic, self.event_types, self.input_purpose)
        return [main, *(i for i in self.more_inputs(settings) if i.topic)]

    def topics(self, settings: S) -> WorkerTopics:
        return WorkerTopics(
            self.name,
            settings.input_topic,
            tuple(settings.topics.retry_delays),
            results=self.results,
            more_inputs=tuple(i.topic for i in self.inputs(settings)[1:]),
        )

    def topic_specs(self, settings: S) -> list[TopicSpec]:
        """Every topic this worker consumes, writes or owns, as it should exist."""
        purposes = {i.topic: f"{i.purpose} → {self.name} worker" for i in self.inputs(settings)}
        topics = self.topics(settings)
        return [
            *topics.specs(settings.topics, purposes[topics.input], purposes),
            *self.own_topics(settings),
        ]

    @property
    def health_port(self) -> int:
        """The worker's default health port (its settings' default)."""
        return int(self.settings.model_fields["health_port"].default)


class UnknownWorkerError(LookupError):
    """A worker name the registry does not hold."""


class Registry:
    """The workers of this installation, in start order."""

    def __init__(self, specs: Iterable[WorkerSpec[Any]]) -> None:
        self._specs: dict[str, WorkerSpec[Any]] = {}
        for spec in specs:
            if spec.name in self._specs:
                raise ValueError(f"two workers are named {spec.name!r}")
            self._specs[spec.name] = spec

    def __iter__(self) -> Iterator[WorkerSpec[Any]]:
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)

    @property
    def names(self) -> list[str]:
        return list(self._specs)

    def get(self, name: str) -> WorkerSpec[Any]:
        try:
            return self._specs[name]
        except KeyError:
            known = ", ".join(self._specs)
            raise UnknownWorkerError(f"no worker {name!r} (known: {known})") from None

    def with_spec(self, spec: WorkerSpec[Any]) -> Registry:
        """This registry and one more worker."""
        return Registry([*self, spec])

    def topic_specs(self) -> list[TopicSpec]:
        """Every topic the workers consume, write or own, each once."""
        return unique(t for spec in self for t in spec.topic_specs(spec.load_settings()))

    async def ensure_topics(self, on_progress: Callable[[str], None] = print) -> EnsureReport:
        """Create every missing topic (shaped by the common topic settings); safe to rerun."""
        common = CommonSettings()
        return await ensure_topics(
            common.kafka,
            self.topic_specs(),
            partitions=common.topics.partitions,
            replication_factor=common.topics.replication_factor,
            on_progress=on_progress,
        )

    def input_topics(self) -> dict[str, str]:
        """Event type → a topic a worker consumes it from (the first worker's first wins)."""
        found: dict[str, str] = {}
        for spec in self:
            for given in spec.inputs(spec.load_settings()):
                for model in given.event_types:
                    event_type = getattr(model, "EVENT_TYPE", model.__name__)
                    found.setdefault(str(event_type), given.topic)
        return found
