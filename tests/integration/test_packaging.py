"""The workers' install (no extras) runs a worker: no FastAPI, trustme or FastStream in it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from services.sandboxes.gvr import GvrSandbox
from services.sandboxes.hsa import HsaSandbox
from shared.settings import TopicSettings
from tests.support.catalog import imported_catalog
from tests.support.gvr_events import kombikas, visit
from tests.support.runtime_harness import create_topics, publish, read_topic, wait_for

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
UV = Path(sys.executable).parent / "uv"


@pytest.fixture(scope="module")
def workers_install(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with requirements.prod.lock and the project, as the workers' image has them."""
    venv = tmp_path_factory.mktemp("workers") / "venv"
    python = venv / "bin" / "python"
    steps = [
        [str(UV), "venv", "-q", "--python", sys.executable, str(venv)],
        [str(UV), "pip", "install", "-q", "--python", str(python), "-r", "requirements.prod.lock"],
        [str(UV), "pip", "install", "-q", "--python", str(python), "--no-deps", "."],
    ]
    for step in steps:
        subprocess.run(step, cwd=ROOT, check=True, capture_output=True, timeout=600)
    return venv


def test_the_workers_install_holds_no_sandbox_or_test_tool(workers_install: Path) -> None:
    python = str(workers_install / "bin" / "python")
    probe = "import importlib.util as u; print([m for m in {m!r} if u.find_spec(m)])"
    missing = ("fastapi", "trustme", "faststream", "pytest", "testcontainers")

    found = subprocess.run(
        [python, "-c", probe.format(m=missing)], capture_output=True, text=True, check=True
    )
    sandbox = subprocess.run(
        [str(workers_install / "bin" / "regbridge"), "sandbox", "hsa"],
        capture_output=True,
        text=True,
        check=False,
    )

    assert found.stdout.strip() == "[]"
    assert sandbox.returncode == 2
    assert "pip install 'regbridge[sandbox]'" in sandbox.stderr


def _start(regbridge: Path, env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    """Away from the checkout: only the installed packages can be imported."""
    return subprocess.Popen(
        [str(regbridge), "run", "gvr"], env=env, cwd=cwd, stderr=subprocess.PIPE
    )


async def test_regbridge_run_gvr_from_the_workers_install_delivers_a_visit(
    workers_install: Path,
    kafka_bootstrap: str,
    unique_name: str,
    hsa_sandbox: HsaSandbox,
    gvr_sandbox: GvrSandbox,
    tmp_path: Path,
) -> None:
    # Given the catalog and GVR's sandbox, and an installation of the workers only
    gvr_sandbox.reset()
    topics = TopicSettings(
        care_units=f"test.units.{unique_name}",
        vaccines=f"test.vaccines.{unique_name}",
        kombikas=f"test.kombikas.{unique_name}",
    )
    async with imported_catalog(kafka_bootstrap, hsa_sandbox.base_url, tmp_path / "c.db", topics):
        pass
    topic = f"test.contacts.{unique_name}"
    await create_topics(kafka_bootstrap, "gvr", topic, ["30s"])
    env = {
        "PATH": os.environ["PATH"],
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "REGBRIDGE_TOPICS_CARE_UNITS": topics.care_units,
        "REGBRIDGE_TOPICS_VACCINES": topics.vaccines,
        "REGBRIDGE_TOPICS_KOMBIKAS": topics.kombikas,
        "REGBRIDGE_TOPICS_RETRY_DELAYS": '["30s"]',
        "REGBRIDGE_GVR_INPUT_TOPIC": topic,
        "REGBRIDGE_GVR_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}",
        "REGBRIDGE_GVR_HEALTH_PORT": "0",
        "REGBRIDGE_GVR_BASE_URL": gvr_sandbox.base_url,
        "REGBRIDGE_GVR_CLIENT_CERT": str(gvr_sandbox.certs.client_cert),
        "REGBRIDGE_GVR_CLIENT_KEY": str(gvr_sandbox.certs.client_key),
        "REGBRIDGE_GVR_CA_BUNDLE": str(gvr_sandbox.certs.ca_cert),
    }
    record = f"besok-{unique_name}"

    # When `regbridge run gvr` runs from it and a visit arrives
    process = _start(workers_install / "bin" / "regbridge", env, tmp_path)
    try:
        await publish(kafka_bootstrap, topic, [visit(record, kombikas(hsa_sandbox)[0])])
        await wait_for(lambda: len(gvr_sandbox.log()) == 1 or process.poll() is not None, 120)
        results = await read_topic(kafka_bootstrap, "gvr.results.v1", timeout=30, at_least=1)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.to_thread(process.communicate, timeout=60)

    # Then GVR holds it, its result says so, and the worker left cleanly
    assert process.returncode == 0, stderr.decode()[-3000:]
    assert [entry["kallId"] for entry in gvr_sandbox.log()] == [record]
    mine = [json.loads(r.value) for r in results if r.key == record.encode()]
    assert [r["status"] for r in mine] == ["accepted"]
