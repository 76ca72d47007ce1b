"""docker-compose.yml cannot run here (no Docker engine); this keeps it consistent with the code."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from services.devstack import infra as devstack

ROOT = Path(__file__).resolve().parents[2]
WORKER_IMAGE, SANDBOX_IMAGE = "regbridge:latest", "regbridge-sandbox:latest"
IMAGES = (WORKER_IMAGE, SANDBOX_IMAGE)


def _compose() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_kafka_and_postgres_with_health_checks() -> None:
    services = _compose()["services"]

    assert {"kafka", "postgres"} <= set(services)
    for name in ("kafka", "postgres"):
        assert services[name]["healthcheck"]["test"]
    assert "9092:9092" in services["kafka"]["ports"]
    env = services["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "EXTERNAL://localhost:9092" in env["KAFKA_ADVERTISED_LISTENERS"]


def test_one_kafka_version_everywhere() -> None:
    pom = (ROOT / "deploy" / "kafka" / "pom.xml").read_text()
    jar_version = re.search(r"<kafka.version>([^<]+)</kafka.version>", pom)
    assert jar_version is not None
    source = Path(devstack.__file__).read_text()

    assert _compose()["services"]["kafka"]["image"] == f"apache/kafka:{jar_version.group(1)}"
    assert f'KafkaContainer("apache/kafka:{jar_version.group(1)}")' in source


def test_regbridge_services_use_real_commands_and_settings() -> None:
    from typer.main import get_command

    from services.cli.app import build_app
    from services.console.settings import ConsoleSettings
    from services.registry import REGISTRY

    services = _compose()["services"]
    cli = get_command(build_app(REGISTRY))
    prefixes = {spec.settings.model_config["env_prefix"]: spec.settings for spec in REGISTRY}
    prefixes[ConsoleSettings.model_config["env_prefix"]] = ConsoleSettings  # the console
    checked = 0
    for name, service in services.items():
        if service.get("image") not in IMAGES:
            continue
        group, *rest = service["command"]
        assert group in cli.commands, f"{name}: no command `regbridge {group}`"  # type: ignore[attr-defined]
        if rest and not rest[0].startswith("-"):
            sub = cli.commands[group]  # type: ignore[attr-defined]
            assert rest[0] in sub.commands, f"{name}: no command `regbridge {group} {rest[0]}`"
        for variable in service.get("environment", {}):
            if variable == "KAFKA_BOOTSTRAP_SERVERS":
                continue
            prefix = next(p for p in prefixes if variable.startswith(p))
            field = variable.removeprefix(prefix).lower()
            assert field in prefixes[prefix].model_fields, f"{name}: {variable} is no setting"
            checked += 1
    assert checked >= 5
    workers = {
        s["command"][1]: s for s in services.values() if s.get("command", [None])[0] == "run"
    }
    assert set(workers) == set(REGISTRY.names), "every worker of the registry runs, and only they"
    for worker_name, worker in workers.items():
        assert worker["image"] == WORKER_IMAGE, f"{worker_name}: workers run the worker image"
        (port,) = [v for k, v in worker["environment"].items() if k.endswith("_HEALTH_PORT")]
        assert f"{port}:{port}" in worker["ports"]
        assert f"127.0.0.1:{port}/health/ready" in worker["healthcheck"]["test"][-1]
    sandboxes = [s for s in services.values() if s.get("command", [None])[0] in ("sandbox", "dev")]
    assert sandboxes
    assert all(s["image"] == SANDBOX_IMAGE for s in sandboxes), "sandboxes need [sandbox]"
