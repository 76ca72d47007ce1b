"""Dashboard, alert rules and scrape targets agree with what the code exports and compose runs."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.metrics import MetricWrapperBase

from services.catalog.metrics import CatalogMetrics
from shared.delivery.metrics import Metrics
from shared.files.delivery import FileMetrics
from shared.schedule import ScheduleMetrics

ROOT = Path(__file__).resolve().parents[2]
OBS = ROOT / "deploy" / "observability"
DASHBOARD = OBS / "grafana" / "dashboards" / "regbridge.json"
ALERTS = OBS / "prometheus" / "alerts.yml"
PROMETHEUS = OBS / "prometheus" / "prometheus.yml"
TARGET_LABELS = {"job", "instance", "service"}  # added by Prometheus and prometheus.yml
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or"}
KEYWORDS |= {"unless", "offset", "inf", "nan"}
IDENT = r"[a-zA-Z_:][a-zA-Z0-9_:]*"


def exported() -> dict[str, set[str]]:
    """Every sample name a worker's /metrics serves → its label names (+ Prometheus' `up`)."""
    samples: dict[str, set[str]] = {"up": set()}
    collectors = [Metrics(), ScheduleMetrics(CollectorRegistry())]
    collectors.append(CatalogMetrics(CollectorRegistry()))
    collectors.append(FileMetrics(CollectorRegistry()))
    for metric in (m for c in collectors for m in vars(c).values()):
        if not isinstance(metric, MetricWrapperBase):
            continue
        name, labels = metric._name, set(metric._labelnames)
        if isinstance(metric, Counter):
            samples[f"{name}_total"] = labels
        elif isinstance(metric, Histogram):
            for suffix in ("_sum", "_count"):
                samples[name + suffix] = labels
            samples[f"{name}_bucket"] = labels | {"le"}
        else:
            samples[name] = labels
    return samples


def parse(expr: str) -> tuple[dict[str, list[set[str]]], set[str]]:
    """A PromQL expression's selectors (metric → matcher labels of each use) and grouping labels.

    Enough PromQL for the expressions here: selectors, matchers, range selectors, functions,
    aggregations with by/without, binary operators with on/ignoring; Grafana's `$variables`."""
    text = re.sub(r"\$\{?\w+\}?", "X", expr)  # Grafana variables (inside strings and ranges)
    text = re.sub(r"\[[^\]]*\]", "", text)  # range selectors
    grouping: set[str] = set()
    clause = r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)"
    for match in re.finditer(clause, text):
        grouping |= {label.strip() for label in match.group(2).split(",") if label.strip()}
    text = re.sub(clause, " ", text)
    selectors: dict[str, list[set[str]]] = {}
    for match in re.finditer(rf"({IDENT})?\s*\{{([^}}]*)\}}", text):
        assert match.group(1), f"a selector without a metric name in {expr!r}"
        labels = set(re.findall(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)\s*\"", match.group(2)))
        selectors.setdefault(match.group(1), []).append(labels)
    text = re.sub(rf"({IDENT})?\s*\{{[^}}]*\}}", " ", text)
    text = re.sub(r'"[^"]*"', " ", text)
    for name in re.findall(rf"(?<![\w.:])({IDENT})(?![\w:])(?!\s*\()", text):
        if name.lower() not in KEYWORDS and not re.fullmatch(r"[0-9.eE]+", name):
            selectors.setdefault(name, []).append(set())
    return selectors, grouping


def check_expression(expr: str, where: str) -> set[str]:
    """Every metric exists and every label used is one it has; returns the metrics' labels."""
    known = exported()
    selectors, grouping = parse(expr)
    assert selectors, f"{where}: no metric in {expr!r}"
    available = set(TARGET_LABELS)
    for name, uses in selectors.items():
        assert name in known, f"{where}: {name} is not exported by any worker's metrics"
        labels = known[name] | TARGET_LABELS
        available |= labels
        for used in uses:
            assert used <= labels, f"{where}: {name} has no label {used - labels}"
    assert grouping <= available, f"{where}: grouping by unknown labels {grouping - available}"
    return grouping or available


def test_the_parser_finds_metrics_labels_and_grouping() -> None:
    selectors, grouping = parse(
        "histogram_quantile(0.95, sum by (worker, le) (rate(regbridge_register_call_seconds_bucket"
        '{worker=~"$worker"}[$__rate_interval]))) > on (worker) up{job="regbridge"} - time()'
    )

    assert selectors == {
        "regbridge_register_call_seconds_bucket": [{"worker"}],
        "up": [{"job"}],
    }
    assert grouping == {"worker", "le"}
    with pytest.raises(AssertionError, match="regbridge_nope is not exported"):
        check_expression('sum(rate(regbridge_nope{worker="gvr"}[5m]))', "test")
    with pytest.raises(AssertionError, match="no label"):
        check_expression('regbridge_circuit_open{tier="30s"}', "test")
    with pytest.raises(AssertionError, match="grouping by unknown"):
        check_expression("sum by (outcome) (regbridge_circuit_open)", "test")


# -- the dashboard ----------------------------------------------------------------------------


def _dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def _panels() -> list[dict[str, Any]]:
    panels: list[dict[str, Any]] = []
    for panel in _dashboard()["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))  # collapsed rows keep theirs inside
    return panels


def test_dashboard_is_an_importable_grafana_dashboard() -> None:
    dashboard = _dashboard()

    assert dashboard["uid"] == "regbridge"
    assert dashboard["title"]
    assert isinstance(dashboard["schemaVersion"], int)
    assert dashboard["schemaVersion"] >= 36
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    worker = variables["worker"]
    assert worker["type"] == "query"
    assert worker["includeAll"]
    assert worker["multi"]
    assert "label_values(regbridge_events_total, worker)" in worker["query"]["query"]
    ids = [p["id"] for p in _panels()]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    assert all(isinstance(i, int) and i > 0 for i in ids)


def test_every_panel_queries_the_data_source_with_valid_expressions() -> None:
    occupied: set[tuple[int, int]] = set()
    for panel in _panels():
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        assert grid["h"] > 0, panel["title"]
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & occupied, f"{panel['title']} overlaps another panel"
        occupied |= cells
        if panel["type"] == "row":
            continue
        assert panel["type"] in {"timeseries", "stat", "state-timeline", "bargauge"}
        assert panel["title"], panel["id"]
        assert panel["description"], panel["id"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], f"{panel['title']}: no query"
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for target in panel["targets"]:
            where = f"panel {panel['title']!r}"
            assert target["datasource"] == panel["datasource"], where
            expr = target["expr"]
            grouped = check_expression(expr, where)
            legend = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", target.get("legendFormat", "")))
            assert legend <= grouped, f"{where}: legend names {legend - grouped}, not kept"
            for name, uses in parse(expr)[0].items():
                if name.startswith("regbridge_"):
                    assert all("worker" in u for u in uses), f"{where}: {name} ignores $worker"
                    assert '$worker"' in expr, where


def test_dashboard_shows_what_the_issue_asks_for() -> None:
    queries = {
        p["title"]: " ".join(t["expr"] for t in p["targets"]) for p in _panels() if "targets" in p
    }
    wanted = {
        "Throughput": "regbridge_events_total",
        "Outcomes": "outcome",
        "Register call latency": "regbridge_register_call_seconds_bucket",
        "Consumer lag": "regbridge_consumer_lag",
        "Retry-tier depth": "regbridge_retry_depth",
        "Dead letters by class": "error_class",
        "Circuit state per register": "regbridge_circuit_open",
        "Dead-letter limit": "regbridge_dlq_limit_tripped",
        "NVR client secret: days left": "regbridge_credential_expiry_timestamp_seconds",
    }
    for title, needle in wanted.items():
        assert needle in queries[title], title
    assert "by (worker)" in queries["Circuit state per register"]
    assert "by (worker, tier)" in queries["Retry-tier depth"]


# -- the alert rules --------------------------------------------------------------------------


def _rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


RUNBOOKS = "docs/observability.md"  # one section per alert: what it means, what to do


def _runbook_anchors() -> set[str]:
    anchors = set()
    for line in (ROOT / RUNBOOKS).read_text().splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


def test_alerts_cover_the_issue_and_tell_the_operator_what_to_do() -> None:
    rules = {rule["alert"]: rule for rule in _rules()}
    anchors = _runbook_anchors()

    assert {
        "RegbridgeDeadLettersGrowing",
        "RegbridgeCircuitOpen",
        "RegbridgeConsumerLagHigh",
        "RegbridgeNvrCredentialExpiring",
        "RegbridgeDlqLimitTripped",
    } <= set(rules)
    for name, rule in rules.items():
        assert re.fullmatch(r"\d+[smh]", str(rule["for"])), f"{name}: needs a `for:`"
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        notes = rule["annotations"]
        assert len(notes["summary"]) <= 100, name
        assert "\n" not in notes["summary"], name
        assert len(notes["description"]) >= 200, f"{name}: say what it means and what to do"
        path, _, anchor = notes["runbook"].partition("#")
        assert path == RUNBOOKS, f"{name}: runbook {notes['runbook']}"
        assert anchor == name.lower(), f"{name}: its own runbook section, not {anchor}"
        assert anchor in anchors, f"{name}: runbook {notes['runbook']}"
        check_expression(rule["expr"], f"alert {name}")
        templates = re.findall(r"\{\{(.*?)\}\}", notes["summary"] + notes["description"])
        for template in templates:
            assert re.fullmatch(r' \$labels\.\w+ | \$value \| printf "%\.0f" ', template), (
                f"{name}: template {{{{{template}}}}} (_render knows only these)"
            )
    docs = (ROOT / "docs" / "observability.md").read_text()
    assert all(f"### {name}" in docs for name in rules), "docs/observability.md: every alert"


def test_nvr_credential_alert_is_thirty_days_on_nvr() -> None:
    rule = next(r for r in _rules() if r["alert"] == "RegbridgeNvrCredentialExpiring")

    assert 'worker="nvr"' in rule["expr"]
    assert rule["expr"].endswith("< 30")


def test_gvr_certificate_alerts_are_thirty_and_seven_days_on_gvr() -> None:
    rules = {r["alert"]: r for r in _rules()}

    for name, days in (
        ("RegbridgeGvrCertificateExpiring", 30),
        ("RegbridgeGvrCertificateExpiresThisWeek", 7),
    ):
        assert 'worker="gvr"' in rules[name]["expr"]
        assert rules[name]["expr"].endswith(f"< {days}")


# -- Prometheus and Grafana in compose ----------------------------------------------------------


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def _mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path → host path of a service's bind mounts."""
    mounts = {}
    for volume in service.get("volumes", []):
        host, container = volume.split(":")[:2]
        if host.startswith("./"):
            mounts[container] = ROOT / host
    return mounts


def test_prometheus_scrapes_every_worker_on_its_health_port() -> None:
    services = _compose()["services"]
    config = yaml.safe_load(PROMETHEUS.read_text())
    workers = {
        name: service
        for name, service in services.items()
        if service.get("image") == "regbridge:latest" and service["command"][0] == "run"
    }
    expected = {}
    for name, service in workers.items():
        (port,) = [v for k, v in service["environment"].items() if k.endswith("_HEALTH_PORT")]
        expected[f"{name}:{port}"] = service["command"][1]

    (job,) = config["scrape_configs"]
    assert job["job_name"] == "regbridge"
    assert job.get("metrics_path", "/metrics") == "/metrics"
    targets = {
        target: static["labels"]["service"]
        for static in job["static_configs"]
        for target in static["targets"]
    }
    assert targets == expected
    from services.registry import REGISTRY

    assert set(workers) == set(REGISTRY.names)  # every worker of the registry is scraped
    assert all("worker" not in s.get("labels", {}) for s in job["static_configs"])


def test_prometheus_and_grafana_run_in_compose_with_their_files() -> None:
    services = _compose()["services"]
    prometheus, grafana = services["prometheus"], services["grafana"]

    for service, image in ((prometheus, "prom/prometheus"), (grafana, "grafana/grafana")):
        name, _, tag = service["image"].partition(":")
        assert name == image, service["image"]
        assert re.fullmatch(r"v?\d+\.\d+\.\d+", tag), f"pin a release: {service['image']}"
    config = yaml.safe_load(PROMETHEUS.read_text())
    mounts = _mounts(prometheus)
    for rule_file in config["rule_files"]:
        folder, _, file = rule_file.rpartition("/")
        assert (mounts[folder] / file).is_file(), rule_file
    assert f"--config.file={next(iter(mounts))}/prometheus.yml" in prometheus["command"]
    assert "9090:9090" in prometheus["ports"]

    env = grafana["environment"]
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    mounts = _mounts(grafana)
    provisioning = mounts["/etc/grafana/provisioning"]
    (datasource,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yaml").read_text())[
        "datasources"
    ]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "regbridge.yaml").read_text())[
        "providers"
    ]
    dashboards = mounts[provider["options"]["path"]]
    assert (dashboards / "regbridge.json").samefile(DASHBOARD)
    home = env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (mounts[home.rpartition("/")[0]] / home.rpartition("/")[2]).samefile(DASHBOARD)


# -- promtool: the rules' syntax, and each alert firing (and not) on made-up series ------------

# (alert, input series, evaluated at, expected labels when firing, $value) — and quiet ones
FIRING: list[tuple[str, dict[str, str], str, dict[str, str], float]] = [
    (
        "RegbridgeDeadLettersGrowing",
        {'regbridge_events_total{worker="nvr",outcome="dead_lettered"}': "0 0 0 4 4 4 4 4 4 4 4"},
        "10m",
        {"worker": "nvr", "severity": "warning"},
        4.0,
    ),
    (
        "RegbridgeCircuitOpen",
        {'regbridge_circuit_open{worker="gvr"}': "0 1 1 1 1 1 1 1 1"},
        "8m",
        {"worker": "gvr", "severity": "warning"},
        1.0,
    ),
    (
        "RegbridgeConsumerLagHigh",
        {
            'regbridge_consumer_lag{worker="gvr",topic="t",partition="0"}': "6000x30",
            'regbridge_consumer_lag{worker="gvr",topic="t",partition="1"}': "6000x30",
        },
        "20m",
        {"worker": "gvr", "severity": "warning"},
        12000.0,
    ),
    (
        "RegbridgeNvrCredentialExpiring",
        {'regbridge_credential_expiry_timestamp_seconds{worker="nvr"}': "1728000x200"},
        "2h",
        {"worker": "nvr", "severity": "warning"},
        (1728000 - 7200) / 86400,
    ),
    (
        "RegbridgeGvrCertificateExpiring",
        {'regbridge_credential_expiry_timestamp_seconds{worker="gvr"}': "1728000x200"},
        "2h",
        {"worker": "gvr", "severity": "warning"},
        (1728000 - 7200) / 86400,
    ),
    (
        "RegbridgeDlqLimitTripped",
        {'regbridge_dlq_limit_tripped{worker="catalog"}': "0 0 1 1 1 1"},
        "5m",
        {"worker": "catalog", "severity": "critical"},
        1.0,
    ),
    (
        "RegbridgeRegisterRefusesCredentials",
        {'regbridge_paused{worker="nvr",reason="configuration"}': "1x10"},
        "5m",
        {"worker": "nvr", "severity": "critical"},
        1.0,
    ),
    (
        "RegbridgeFileNotAccepted",
        {'regbridge_files_not_accepted{worker="vgpv",period="2027-01"}': "0 0 3 3 3 3"},
        "5m",
        {"worker": "vgpv", "period": "2027-01", "severity": "critical"},
        3.0,
    ),
    (
        "RegbridgeLedgerUnavailable",
        {'regbridge_paused{worker="gvr",reason="ledger"}': "0 1 1 1 1 1"},
        "5m",
        {"worker": "gvr", "severity": "critical"},
        1.0,
    ),
    (
        "RegbridgeWorkerDown",
        {'up{job="regbridge",instance="nvr:8082",service="nvr"}': "0x10"},
        "5m",
        {"job": "regbridge", "instance": "nvr:8082", "service": "nvr", "severity": "critical"},
        0.0,
    ),
    (  # two replicas: the one that ran no slot knows of no success; the best one counts
        "RegbridgeScheduleBehind",
        {
            'regbridge_schedule_slots_since_success{kind="hsa-full-import",instance="a"}': (
                "0 0 1 1 2 2 2 2 2 2 2 2"
            ),
            'regbridge_schedule_slots_since_success{kind="hsa-full-import",instance="b"}': (
                "3 3 3 3 3 3 3 3 3 3 3 3"
            ),
        },
        "11m",
        {"kind": "hsa-full-import", "severity": "warning"},
        2.0,
    ),
    (
        "RegbridgeCatalogRemovalsWithheld",
        {'regbridge_catalog_import_removals_withheld{source="hsa"}': "0 0 1 1"},
        "3m",
        {"source": "hsa", "severity": "warning"},
        1.0,
    ),
    (
        "RegbridgeCatalogNotificationsSlow",
        {
            'regbridge_catalog_notification_lag_seconds_bucket{le="300.0"}': "0+1x60",
            'regbridge_catalog_notification_lag_seconds_bucket{le="900.0"}': "0+10x60",
            'regbridge_catalog_notification_lag_seconds_bucket{le="+Inf"}': "0+10x60",
        },
        "45m",
        {"severity": "warning"},
        300 + 600 * 8.5 / 9,
    ),
]
QUIET: list[tuple[str, dict[str, str], str]] = [
    (
        "RegbridgeDeadLettersGrowing",  # many dead letters, but none new
        {'regbridge_events_total{worker="nvr",outcome="dead_lettered"}': "7x40"},
        "30m",
    ),
    ("RegbridgeCircuitOpen", {'regbridge_circuit_open{worker="gvr"}': "0 1 1 0 1 1 0 0 0"}, "8m"),
    (
        "RegbridgeConsumerLagHigh",
        {'regbridge_consumer_lag{worker="gvr",topic="t",partition="0"}': "9000x30"},
        "20m",
    ),
    (
        "RegbridgeNvrCredentialExpiring",
        {'regbridge_credential_expiry_timestamp_seconds{worker="nvr"}': "3456000x200"},
        "2h",
    ),
    (
        "RegbridgeNvrCredentialExpiring",
        {'regbridge_credential_expiry_timestamp_seconds{worker="gvr"}': "86400x200"},
        "2h",
    ),
    (
        "RegbridgeGvrCertificateExpiring",
        {'regbridge_credential_expiry_timestamp_seconds{worker="gvr"}': "3456000x200"},
        "2h",
    ),
    (
        "RegbridgeGvrCertificateExpiring",
        {'regbridge_credential_expiry_timestamp_seconds{worker="nvr"}': "86400x200"},
        "2h",
    ),
    ("RegbridgeDlqLimitTripped", {'regbridge_dlq_limit_tripped{worker="gvr"}': "0x10"}, "5m"),
    (
        "RegbridgeRegisterRefusesCredentials",
        {'regbridge_paused{worker="nvr",reason="circuit_open"}': "1x10"},
        "5m",
    ),
    (
        "RegbridgeWorkerDown",
        {'up{job="regbridge",instance="nvr:8082",service="nvr"}': "1x10"},
        "5m",
    ),
    (  # one replica behind, the other ran the last slot well
        "RegbridgeScheduleBehind",
        {
            'regbridge_schedule_slots_since_success{kind="hsa-full-import",instance="a"}': "0x12",
            'regbridge_schedule_slots_since_success{kind="hsa-full-import",instance="b"}': "3x12",
        },
        "11m",
    ),
    (
        "RegbridgeScheduleBehind",
        {'regbridge_schedule_slots_since_success{kind="k"}': "1x12"},
        "11m",
    ),
    (
        "RegbridgeCatalogRemovalsWithheld",
        {'regbridge_catalog_import_removals_withheld{source="hsa"}': "0x5"},
        "3m",
    ),
    (
        "RegbridgeCatalogNotificationsSlow",
        {
            'regbridge_catalog_notification_lag_seconds_bucket{le="5.0"}': "0+10x60",
            'regbridge_catalog_notification_lag_seconds_bucket{le="+Inf"}': "0+10x60",
        },
        "45m",
    ),
]


def _render(template: str, labels: dict[str, str], value: float) -> str:
    text = re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m.group(1)], template)
    return text.replace('{{ $value | printf "%.0f" }}', f"{value:.0f}")


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(
                "promtool is missing (deploy/ci/ensure-tools.sh installs Debian's prometheus)"
            )
        pytest.skip("promtool not installed (apt-get install prometheus); CI installs it")
    return found


def test_promtool_accepts_the_rules_and_the_config() -> None:
    promtool = _promtool()
    for args in (
        ["check", "rules", str(ALERTS)],
        ["check", "config", "--syntax-only", str(PROMETHEUS)],
    ):
        run = subprocess.run([promtool, *args], capture_output=True, text=True, check=False)
        assert run.returncode == 0, run.stdout + run.stderr


def test_promtool_alert_tests(tmp_path: Path) -> None:
    promtool = _promtool()
    rules = {rule["alert"]: rule for rule in _rules()}
    this_week = {"RegbridgeNvrCredentialExpiresThisWeek", "RegbridgeGvrCertificateExpiresThisWeek"}
    assert {case[0] for case in FIRING} == set(rules) - this_week
    tests = []
    for alert, series, at, labels, value in FIRING:
        notes = rules[alert]["annotations"]
        expected = {
            "exp_labels": labels,
            "exp_annotations": {k: _render(v, labels, value) for k, v in notes.items()},
        }
        tests.append(_case(series, at, alert, [expected]))
    for alert, series, at in QUIET:
        tests.append(_case(series, at, alert, []))
    # five days left: both the 30-day warning and the 7-day critical fire
    for worker, pair in (
        ("nvr", ("RegbridgeNvrCredentialExpiring", "RegbridgeNvrCredentialExpiresThisWeek")),
        ("gvr", ("RegbridgeGvrCertificateExpiring", "RegbridgeGvrCertificateExpiresThisWeek")),
    ):
        five = {f'regbridge_credential_expiry_timestamp_seconds{{worker="{worker}"}}': "432000x200"}
        for alert in pair:
            labels = {"worker": worker, "severity": rules[alert]["labels"]["severity"]}
            notes = {k: _render(v, labels, 4.9) for k, v in rules[alert]["annotations"].items()}
            expected = [{"exp_labels": labels, "exp_annotations": notes}]
            tests.append(_case(five, "2h", alert, expected))
    spec = tmp_path / "alerts.test.yml"
    spec.write_text(
        yaml.safe_dump({"rule_files": [str(ALERTS)], "evaluation_interval": "1m", "tests": tests})
    )

    run = subprocess.run(
        [promtool, "test", "rules", str(spec)], capture_output=True, text=True, check=False
    )

    assert run.returncode == 0, run.stdout + run.stderr
    assert len(tests) == len(FIRING) + len(QUIET) + 4


def _case(
    series: dict[str, str], at: str, alert: str, expected: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "interval": "1m",
        "input_series": [{"series": s, "values": v} for s, v in series.items()],
        "alert_rule_test": [{"eval_time": at, "alertname": alert, "exp_alerts": expected}],
    }


# -- the runtime's pause gauge -----------------------------------------------------------------


def test_a_new_pause_reason_clears_the_old_one_in_the_metric(tmp_path: Path) -> None:
    from shared.delivery.ledger import Ledger
    from shared.delivery.options import RuntimeOptions
    from shared.delivery.runtime import DeliveryRuntime
    from shared.settings import KafkaSettings
    from shared.topics import WorkerTopics
    from tests.unit.test_chunk import ScriptedWorker  # its name is all the runtime reads here

    runtime = DeliveryRuntime(
        ScriptedWorker(),
        Ledger.from_url(f"sqlite+aiosqlite:///{tmp_path / 'l.db'}"),
        KafkaSettings(),
        WorkerTopics("scripted", "in", ()),
        RuntimeOptions(),
    )
    registry = runtime.metrics.registry

    runtime._pause_all("circuit_open", "register down")
    runtime._pause_all("dlq_limit", "limit tripped")

    def paused(reason: str) -> float | None:
        return registry.get_sample_value(
            "regbridge_paused", {"worker": "scripted", "reason": reason}
        )

    assert (paused("circuit_open"), paused("dlq_limit")) == (0, 1)
