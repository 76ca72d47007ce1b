"""deploy/k8s cannot be applied here (no cluster): render the overlays, check them against the code.

The overlays are rendered by tests/support/kustomize.py (no kubectl, no kustomize binary). Every
container must run a real command; every variable and ConfigMap key must be a setting of the
process that reads it, with a value the settings accept; probes must hit the health routes on the
HEALTH_PORT; KEDA must watch the consumer group and topics the runtime uses, up to the partition
count; the grace period must outlast the drain the settings allow; secret files must be mounted
where the settings point. The console must read each worker's topics, ledger and health URL as the
worker itself has them.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import math
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import BaseModel, SecretStr
from starlette.routing import Route

from services.catalog.directory_client import DirectoryClient
from services.catalog.settings import CatalogSettings
from services.console.settings import ConsoleSettings
from services.cvr.settings import CvrSettings
from services.gvr.settings import GvrSettings
from services.nvr.settings import NvrSettings
from services.registry import REGISTRY
from services.vgpv.settings import VgpvSettings
from shared.delivery.health import health_app
from shared.delivery.runtime import DeliveryRuntime
from shared.files.settings import FileWorkerSettings
from shared.schedule import DailySlots, parse_times
from shared.settings import CommonSettings, KafkaSettings, RegbridgeSettings, TopicSettings
from tests.support.kustomize import Resource, build

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("test", "production")
DOCS = ROOT / "docs" / "kubernetes.md"


def _settings_of() -> dict[tuple[str, ...], type[CommonSettings]]:
    """Which settings class each command builds, from the registry: `run <worker>` and the
    worker's own commands read its settings; `topics ensure` the common ones."""
    from typer.main import get_command

    found: dict[tuple[str, ...], type[CommonSettings]] = {
        ("topics", "ensure"): CommonSettings,
        ("console",): ConsoleSettings,
    }
    for spec in REGISTRY:
        found[("run", spec.name)] = spec.settings
        if spec.commands is not None:
            for name in get_command(spec.commands()).commands:  # type: ignore[attr-defined]
                found[(spec.name, name)] = spec.settings
    return found


SETTINGS_OF = _settings_of()
WORKERS = REGISTRY.names
# Commands that also read every worker's settings (its ledger, its topics), as
# services/console/sources.py does with each spec's load_settings().
ALSO_READ: dict[tuple[str, ...], tuple[type[CommonSettings], ...]] = {
    ("console",): tuple(spec.settings for spec in REGISTRY),
}
# Settings that are paths of files a Secret provides.
FILE_SETTINGS: dict[type[BaseModel], set[str]] = {
    KafkaSettings: {"ssl_cafile", "ssl_certfile", "ssl_keyfile"},
    GvrSettings: {"client_cert", "client_key", "client_p12", "ca_bundle"},
    NvrSettings: {"client_secret_file", "ca_bundle"},
    VgpvSettings: {"client_cert", "client_key", "ca_bundle"},
    CvrSettings: {"sftp_key_file", "sftp_known_hosts"},
    CatalogSettings: {"nvr_client_secret_file"},
    ConsoleSettings: {
        "database_url_file",
        "session_secret_file",
        "accounts_file",
        "oidc_client_secret_file",
    },
}
KEDA_SASL = {
    "PLAIN": "plaintext",
    "SCRAM-SHA-256": "scram_sha256",
    "SCRAM-SHA-512": "scram_sha512",
    "OAUTHBEARER": "oauthbearer",
}
WORKLOADS = ("Deployment", "Job", "CronJob")


@functools.cache
def _rendered(overlay: str) -> tuple[Resource, ...]:
    return tuple(build(K8S / "overlays" / overlay))


@pytest.fixture(params=OVERLAYS)
def resources(request: pytest.FixtureRequest) -> tuple[Resource, ...]:
    return _rendered(request.param)


def _one(resources: tuple[Resource, ...], kind: str, name: str) -> Resource:
    found = [r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind} {name}: {len(found)} found"
    return found[0]


def _pod_spec(workload: Resource) -> dict[str, Any]:
    if workload["kind"] == "CronJob":
        return workload["spec"]["jobTemplate"]["spec"]["template"]["spec"]  # type: ignore[no-any-return]
    return workload["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def _containers(resources: tuple[Resource, ...]) -> Iterator[tuple[Resource, dict[str, Any]]]:
    for workload in resources:
        if workload["kind"] in WORKLOADS:
            for container in _pod_spec(workload)["containers"]:
                yield workload, container


def _command(container: dict[str, Any]) -> tuple[str, ...]:
    return tuple(a for a in container["args"] if not a.startswith("-"))


def _worker_container(resources: tuple[Resource, ...], worker: str) -> dict[str, Any]:
    (container,) = [c for _, c in _containers(resources) if _command(c) == ("run", worker)]
    return container


def _env(resources: tuple[Resource, ...], container: dict[str, Any]) -> dict[str, Any]:
    """The container's variables: ConfigMaps first, then `env` (a value, or its `valueFrom`)."""
    env: dict[str, Any] = {}
    for source in container.get("envFrom", []):
        env |= _one(resources, "ConfigMap", source["configMapRef"]["name"]).get("data", {})
    for variable in container.get("env", []):
        env[variable["name"]] = variable.get("value", variable.get("valueFrom"))
    return env


def _readers(command: tuple[str, ...]) -> tuple[type[CommonSettings], ...]:
    """The settings classes the command builds: its own first."""
    return (SETTINGS_OF[command], *ALSO_READ.get(command, ()))


def _field_of(variable: str, *classes: type[CommonSettings]) -> tuple[type[BaseModel], str]:
    """The settings class (or nested section) and field a variable sets for a process built on
    `classes`: ``REGBRIDGE_NVR_RUNTIME__CHUNK_SIZE`` is `chunk_size` of NvrSettings' runtime."""
    sections: dict[str, type[BaseModel]] = {
        "REGBRIDGE_KAFKA_": KafkaSettings,
        "REGBRIDGE_TOPICS_": TopicSettings,
    }
    for prefix, section in sections.items():
        if variable.startswith(prefix):
            return section, variable.removeprefix(prefix).lower()
    prefixes = {c.model_config.get("env_prefix", ""): c for c in classes}
    readers = [p for p in prefixes if variable.startswith(p)]
    names = ", ".join(c.__name__ for c in classes)
    assert readers, f"{variable} is read by no {names} ({', '.join(prefixes)}…)"
    prefix = max(readers, key=len)
    cls = prefixes[prefix]
    owner: type[BaseModel] = cls
    *path, field = variable.removeprefix(prefix).lower().split("__")
    for name in path:
        assert name in owner.model_fields, f"{variable}: {owner.__name__} has no section {name}"
        nested = owner.model_fields[name].annotation
        assert inspect.isclass(nested), f"{variable}: {name}"
        assert issubclass(nested, BaseModel), f"{variable}: {name}"
        owner = nested
    return owner, field


@contextlib.contextmanager
def _environment(env: dict[str, Any]) -> Iterator[None]:
    """Exactly this environment for regbridge's settings (Secrets stand in as placeholders)."""
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("REGBRIDGE_") or name == "KAFKA_BOOTSTRAP_SERVERS":
                patch.delenv(name)
        for name, value in env.items():
            patch.setenv(name, value if isinstance(value, str) else f"from-{sorted(value)[0]}")
        yield


def _settings(env: dict[str, Any], cls: type[CommonSettings]) -> CommonSettings:
    """`cls` built from exactly this environment."""
    with _environment(env):
        return cls()


def _effective(resources: tuple[Resource, ...], container: dict[str, Any]) -> Any:
    return _settings(_env(resources, container), SETTINGS_OF[_command(container)])


def test_every_container_runs_a_real_command(resources: tuple[Resource, ...]) -> None:
    from typer.main import get_command

    from services.cli.app import build_app

    cli = get_command(build_app(REGISTRY))
    workers = set()
    for workload, container in _containers(resources):
        command = _command(container)
        group = cli
        for word in command:
            assert word in group.commands, f"{workload['metadata']['name']}: no `regbridge {word}`"  # type: ignore[attr-defined]
            group = group.commands[word]  # type: ignore[attr-defined]
        assert command in SETTINGS_OF, f"{command}: which settings does it read?"
        workers.add(command)
    assert {("run", name) for name in WORKERS} | {("topics", "ensure"), ("console",)} <= workers


def test_every_variable_and_config_key_is_a_setting_of_its_process(
    resources: tuple[Resource, ...],
) -> None:
    used_config_maps = set()
    for workload, container in _containers(resources):
        readers = _readers(_command(container))
        for source in container.get("envFrom", []):
            used_config_maps.add(source["configMapRef"]["name"])
        for variable, value in _env(resources, container).items():
            section, field = _field_of(variable, *readers)
            where = f"{workload['metadata']['name']}: {variable}"
            assert field in section.model_fields, f"{where} is no setting of {section.__name__}"
            annotation = section.model_fields[field].annotation
            assert not (inspect.isclass(annotation) and issubclass(annotation, BaseModel)), (
                f"{where} sets a whole section"
            )
            if "SecretStr" in str(annotation) or annotation is SecretStr:
                assert isinstance(value, dict), f"{where} is a secret: from a Secret, never literal"
                assert "secretKeyRef" in value, f"{where} must come from a Secret"
        for cls in readers:  # the values parse (lists as JSON, literals, numbers)
            _settings(_env(resources, container), cls)
    config_maps = {r["metadata"]["name"] for r in resources if r["kind"] == "ConfigMap"}
    assert config_maps == used_config_maps, "a ConfigMap no process reads"


def _secret_names(node: Any) -> Iterator[str]:
    """Every Secret a manifest refers to: volumes, projections, variables, KEDA's references."""
    if isinstance(node, list):
        for item in node:
            yield from _secret_names(item)
    elif isinstance(node, dict):
        if "secretName" in node:
            yield node["secretName"]
        for key in ("secret", "secretKeyRef"):
            if isinstance(node.get(key), dict) and "name" in node[key]:
                yield node[key]["name"]
        for ref in node.get("secretTargetRef", []):
            yield ref["name"]
        for value in node.values():
            yield from _secret_names(value)


def test_no_secret_is_in_the_manifests_and_every_one_is_documented(
    resources: tuple[Resource, ...],
) -> None:
    assert not [r for r in resources if r["kind"] == "Secret"], "Secrets are created out of band"
    names = set(_secret_names(list(resources)))
    assert {"regbridge-database", "regbridge-nvr-client", "regbridge-gvr-client-tls"} <= names
    documented = DOCS.read_text()
    for name in names:
        assert f"`{name}`" in documented, f"Secret {name} is not described in docs/kubernetes.md"


def _mounted_files(pod: dict[str, Any], container: dict[str, Any]) -> set[str]:
    """Files that a Secret's listed items put into the container."""
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    files = set()
    for mount in container.get("volumeMounts", []):
        volume = volumes[mount["name"]]
        projected = volume.get("projected", {}).get("sources", [])
        sources = [s["secret"] for s in projected if "secret" in s]
        sources += [volume["secret"]] if "secret" in volume else []
        for source in sources:
            assert source.get("items"), f"{mount['name']}: list the keys a Secret provides"
            files |= {f"{mount['mountPath']}/{item['path']}" for item in source["items"]}
    return files


def test_secret_files_are_mounted_where_the_settings_point(
    resources: tuple[Resource, ...],
) -> None:
    for section, fields in FILE_SETTINGS.items():
        assert fields <= set(section.model_fields), f"{section.__name__}: renamed a file setting"
    for workload, container in _containers(resources):
        readers = _readers(_command(container))
        mounted = _mounted_files(_pod_spec(workload), container)
        pointed = set()
        for variable, value in _env(resources, container).items():
            section, field = _field_of(variable, *readers)
            if field in FILE_SETTINGS.get(section, set()):
                assert value in mounted, f"{workload['metadata']['name']}: {variable}={value}"
                pointed.add(value)
        assert mounted == pointed, f"{workload['metadata']['name']}: a file no setting reads"


def test_probes_and_ports_match_the_health_server(resources: tuple[Resource, ...]) -> None:
    routes = {route.path for route in health_app(None).routes}  # type: ignore[arg-type, attr-defined]
    for worker in WORKERS:
        container = _worker_container(resources, worker)
        settings = _effective(resources, container)
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports == {"health": settings.health_port}
        probes = {k: container[k] for k in ("startupProbe", "livenessProbe", "readinessProbe")}
        for probe in probes.values():
            assert probe["httpGet"]["path"] in routes
            assert ports[probe["httpGet"]["port"]] == settings.health_port
        assert probes["livenessProbe"]["httpGet"]["path"] == "/health/live"
        assert probes["readinessProbe"]["httpGet"]["path"] == "/health/ready"
        service = _one(resources, "Service", f"regbridge-{worker}")
        (port,) = service["spec"]["ports"]
        assert (port["port"], port["targetPort"]) == (settings.health_port, "health")
        if isinstance(settings, GvrSettings | NvrSettings | VgpvSettings | CvrSettings):
            # nothing answers until the CatalogView has caught up (services/<worker>/spec.py)
            startup = probes["startupProbe"]
            budget = startup.get("initialDelaySeconds", 0) + (
                startup["periodSeconds"] * startup["failureThreshold"]
            )
            assert budget > settings.catalog_ready_timeout


def _console(resources: tuple[Resource, ...]) -> dict[str, Any]:
    (container,) = [c for _, c in _containers(resources) if _command(c) == ("console",)]
    return container


def test_the_console_serves_its_probes_behind_a_login_from_the_secrets(
    resources: tuple[Resource, ...], tmp_path: Path
) -> None:
    from services.console.app import create_app

    container = _console(resources)
    settings = _effective(resources, container)
    assert isinstance(settings, ConsoleSettings)
    assert settings.host == "0.0.0.0", "reachable from its Service"  # noqa: S104
    assert settings.secure_cookies, "behind TLS: cookies are Secure"
    assert settings.oidc_enabled, "the production login: OIDC"
    assert settings.oidc_issuer is not None
    assert settings.oidc_issuer.startswith("https://")
    env = _env(resources, container)
    for variable in ("SESSION_SECRET_FILE", "OIDC_CLIENT_SECRET_FILE", "DATABASE_URL"):
        assert f"REGBRIDGE_CONSOLE_{variable}" in env, f"{variable}: from a Secret"
    oidc_secret = tmp_path / "oidc-client-secret"  # the mounted files stand in here
    oidc_secret.write_text("from-the-provider")
    app = create_app(
        settings.model_copy(
            update={
                "session_secret": SecretStr("s" * 40),
                "session_secret_file": None,
                "oidc_client_secret_file": str(oidc_secret),
                "database_url": SecretStr(f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}"),
                "database_url_file": None,
            }
        ),
        {},
        {},
    )
    routes = {route.path for route in app.routes if isinstance(route, Route)}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": settings.port}
    probes = {k: container[k] for k in ("livenessProbe", "readinessProbe")}
    for probe in probes.values():
        assert probe["httpGet"]["path"] in routes
        assert ports[probe["httpGet"]["port"]] == settings.port
    assert probes["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert probes["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    (port,) = _one(resources, "Service", "regbridge-console")["spec"]["ports"]
    assert (port["port"], port["targetPort"]) == (settings.port, "http")


def test_the_console_reads_each_worker_as_the_worker_runs(
    resources: tuple[Resource, ...],
) -> None:
    from services.console.sources import worker_sources

    container = _console(resources)
    env = _env(resources, container)
    with _environment(env):
        sources = worker_sources(REGISTRY, ConsoleSettings())
    assert set(sources) == set(WORKERS)
    for spec in REGISTRY:
        worker = _worker_container(resources, spec.name)
        settings = _effective(resources, worker)
        source = sources[spec.name]
        # its dead letters, retry tiers and results, where the worker writes them
        assert source.topics == spec.topics(settings), spec.name
        # its ledger: the same Secret key (replays audited, traces, slots and file state there)
        variable = f"{spec.settings.model_config['env_prefix']}DATABASE_URL"
        assert env[variable] == _env(resources, worker)[variable], spec.name
        # its /status and /health/ready: through the worker's Service, on its health port
        (port,) = _one(resources, "Service", f"regbridge-{spec.name}")["spec"]["ports"]
        assert port["port"] == settings.health_port
        assert source.health_url == f"http://regbridge-{spec.name}:{port['port']}"


def test_keda_scales_on_the_runtime_consumer_group_up_to_the_partitions(
    resources: tuple[Resource, ...],
) -> None:
    assert 'auto_offset_reset="earliest"' in inspect.getsource(DeliveryRuntime._consumer)
    scaled = {
        r["spec"]["scaleTargetRef"]["name"]: r for r in resources if r["kind"] == "ScaledObject"
    }
    # every worker that publishes results (a register's) scales on its lag; the catalog doesn't
    assert set(scaled) == {f"regbridge-{spec.name}" for spec in REGISTRY if spec.results}
    for spec in REGISTRY:
        if not spec.results:
            continue
        worker = spec.name
        container = _worker_container(resources, worker)
        settings = _effective(resources, container)
        env = _env(resources, container)
        scaled_object = scaled[f"regbridge-{worker}"]
        deployment = _one(resources, "Deployment", f"regbridge-{worker}")
        assert "replicas" not in deployment["spec"], "the ScaledObject owns the replica count"
        triggers = scaled_object["spec"]["triggers"]
        topics = spec.topics(settings)  # what the runtime consumes, as which group
        # a trigger per input topic, in the runtime's order (the HPA takes the largest)
        watched = [(t["metadata"]["consumerGroup"], t["metadata"]["topic"]) for t in triggers]
        assert watched == [(topics.consumer_group, topic) for topic in topics.inputs]
        assert scaled_object["spec"]["maxReplicaCount"] == settings.topics.partitions
        assert 1 <= scaled_object["spec"]["minReplicaCount"] <= settings.topics.partitions
        kafka = settings.kafka
        for trigger in triggers:
            meta = trigger["metadata"]
            assert trigger["type"] == "kafka"
            assert env[meta["bootstrapServersFromEnv"]] == settings.kafka.bootstrap_servers
            assert meta["offsetResetPolicy"] == "earliest"
            assert meta.get("tls", "disable") == (
                "enable" if kafka.security_protocol in ("SSL", "SASL_SSL") else "disable"
            )
            assert meta.get("sasl", "none") == KEDA_SASL.get(kafka.sasl_mechanism or "", "none")
            if kafka.sasl_mechanism:
                name = trigger["authenticationRef"]["name"]
                auth = _one(resources, "TriggerAuthentication", name)
                given = {ref["parameter"] for ref in auth["spec"]["secretTargetRef"]}
                assert {"username", "password"} <= given
                assert ("ca" in given) == bool(kafka.ssl_cafile)


def _call_bound(settings: RegbridgeSettings) -> float:
    """The longest one register call of this worker can take (s) when the register hangs."""
    options = settings.runtime
    if isinstance(settings, FileWorkerSettings):
        # A file register's intake calls no register: its "call" stores a batch in the file
        # state, in the ledger's database, whose writes no worker's bound counts. Its uploads run
        # in the delivery runs, which are cancelled with the process, not drained.
        return 0.0
    if isinstance(settings, GvrSettings | NvrSettings):
        calls = math.ceil(min(options.max_in_flight, options.chunk_size) / options.batch_size)
        waits = 0.0 if settings.max_connections >= calls else settings.pool_timeout
        return waits + settings.connect_timeout + settings.write_timeout + settings.read_timeout
    assert isinstance(settings, CatalogSettings)
    timeout = DirectoryClient(settings.hsa_url)._client.timeout  # the look-up, then the publish
    assert timeout.connect is not None
    assert timeout.write is not None
    assert timeout.read is not None
    return timeout.connect + timeout.write + timeout.read + settings.kafka.request_timeout_ms / 1000


def drain_bound(settings: RegbridgeSettings) -> float:
    """Seconds from SIGTERM to exit at worst (shared/delivery/app.py and runtime.py): once
    stopping, nothing more is sent (an unsent event is handed back), so the calls already out —
    at most `max_in_flight` events, all at once — end within one call each; then every chunk in
    hand (`chunks_in_hand` of the input consumer and as many of the retry consumer's) publishes its
    retries, dead letters and results and commits its offsets, each bounded by Kafka's request
    timeout."""
    options = settings.runtime
    kafka = settings.kafka.request_timeout_ms / 1000
    chunks = 2 * options.chunks_in_hand
    return _call_bound(settings) + options.batch_linger + chunks * 2 * kafka


def test_termination_grace_outlasts_the_drain(resources: tuple[Resource, ...]) -> None:
    for worker in WORKERS:
        container = _worker_container(resources, worker)
        deployment = _one(resources, "Deployment", f"regbridge-{worker}")
        grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        bound = drain_bound(_effective(resources, container))
        assert bound < grace, f"{worker}: drain may take {bound:.0f} s, grace is {grace} s"
        assert grace < bound + 120, f"{worker}: grace {grace} s far beyond the drain ({bound:.0f})"
        assert "lifecycle" not in container, "SIGTERM itself drains: no preStop hook"


def test_one_image_everywhere_with_a_tag(resources: tuple[Resource, ...]) -> None:
    images = {c["image"] for _, c in _containers(resources)}
    assert len(images) == 1, images
    (image,) = images
    assert re.fullmatch(r"[^:]+/regbridge:[\w][\w.-]*", image)
    assert not image.endswith(":latest")


def _quantity(text: str | int) -> float:
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    value = str(text)
    for suffix, factor in units.items():
        if value.endswith(suffix):
            return float(value.removesuffix(suffix)) * factor
    return float(value)


def test_pods_are_locked_down_and_sized(resources: tuple[Resource, ...]) -> None:
    for workload, container in _containers(resources):
        name = workload["metadata"]["name"]
        pod = _pod_spec(workload)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True, name
        assert context["allowPrivilegeEscalation"] is False, name
        assert context["capabilities"]["drop"] == ["ALL"], name
        limits, requests = container["resources"]["limits"], container["resources"]["requests"]
        for resource in ("cpu", "memory"):
            assert _quantity(requests[resource]) <= _quantity(limits[resource]), name
    for worker in WORKERS:
        container = _worker_container(resources, worker)
        # README, Benchmarks: ~200 MB for a CatalogView of 300,000 units (and 189 MB per import)
        assert _quantity(container["resources"]["limits"]["memory"]) >= 400 * 2**20
        assert _quantity(container["resources"]["requests"]["memory"]) >= 256 * 2**20


def test_disruption_budgets_let_one_pod_go_at_a_time(resources: tuple[Resource, ...]) -> None:
    for worker in WORKERS:
        budget = _one(resources, "PodDisruptionBudget", f"regbridge-{worker}")
        deployment = _one(resources, "Deployment", f"regbridge-{worker}")
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert (
            deployment["spec"]["selector"]["matchLabels"]
            == budget["spec"]["selector"]["matchLabels"]
        )
        assert budget["spec"]["maxUnavailable"] == 1


def test_catalog_imports_on_its_own_schedule_once(resources: tuple[Resource, ...]) -> None:
    container = _worker_container(resources, "catalog")
    settings = _effective(resources, container)
    assert isinstance(settings, CatalogSettings)
    assert parse_times(settings.import_times), "no import times: the schedule task would fail"
    DailySlots(parse_times(settings.import_times), ZoneInfo(settings.timezone))
    instance = _env(resources, container)["REGBRIDGE_CATALOG_INSTANCE_ID"]
    assert instance == {"fieldRef": {"fieldPath": "metadata.name"}}  # who claimed a slot
    assert settings.database_url.get_secret_value().startswith("from-")  # claims need the DB
    runs_import_now = [c for _, c in _containers(resources) if _command(c)[:1] == ("catalog",)]
    assert not runs_import_now, "the in-process schedule imports already: this would run twice"


def test_every_environment_value_is_set_by_the_overlay(resources: tuple[Resource, ...]) -> None:
    assert "set-in-overlay" not in repr(resources)
    namespaces = {r["metadata"].get("namespace") for r in resources}
    assert len(namespaces) == 1
    assert None not in namespaces
    container = _worker_container(resources, "gvr")
    settings = _effective(resources, container)
    assert len(settings.kafka.bootstrap_list) >= 3, "several brokers"
    assert settings.kafka.security_protocol == "SASL_SSL"
    assert settings.topics.replication_factor >= 3
    for worker in WORKERS:
        effective = _effective(resources, _worker_container(resources, worker))
        for url in ("base_url", "hsa_url", "vaccines_url"):
            if url in type(effective).model_fields:
                assert getattr(effective, url).startswith("https://"), f"{worker}.{url}"


def test_production_runs_sasl_scram_with_two_replicas_at_least() -> None:
    resources = _rendered("production")
    settings = _effective(resources, _worker_container(resources, "nvr"))
    assert settings.kafka.sasl_mechanism == "SCRAM-SHA-512"
    assert settings.kafka.ssl_cafile
    for scaled in (r for r in resources if r["kind"] == "ScaledObject"):
        assert scaled["spec"]["minReplicaCount"] >= 2
    assert _one(resources, "Deployment", "regbridge-catalog")["spec"]["replicas"] >= 2


def test_base_is_namespace_agnostic() -> None:
    base = build(K8S / "base")
    assert all("namespace" not in r["metadata"] for r in base)
    assert {r["kind"] for r in base} >= {
        "ConfigMap",
        "Deployment",
        "Job",
        "PodDisruptionBudget",
        "ScaledObject",
        "Service",
    }
