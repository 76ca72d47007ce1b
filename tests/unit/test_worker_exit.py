"""A worker that cannot run says why in its structured log, and exits non-zero."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def _run(**env: str) -> tuple[int, list[dict[str, object]]]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("REGBRIDGE_")}
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", "run", "gvr"],
        env=clean | env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert len(lines) == len(result.stderr.splitlines()), (
        f"not every line is JSON:\n{result.stderr}"
    )
    return result.returncode, lines


def test_settings_that_do_not_parse_are_one_structured_error() -> None:
    code, lines = _run(REGBRIDGE_GVR_HEALTH_PORT="eighty", REGBRIDGE_GVR_LOG_FORMAT="json")

    assert code == 2
    (line,) = lines
    assert (line["event"], line["level"], line["worker"]) == ("settings_invalid", "error", "gvr")
    assert "health_port" in str(line["error"])


def test_an_exit_on_error_is_logged_with_its_cause() -> None:
    code, lines = _run(
        REGBRIDGE_GVR_DATABASE_URL="nosuchdriver://ledger", REGBRIDGE_GVR_LOG_FORMAT="json"
    )

    assert code == 1
    failed = [line for line in lines if line["event"] == "worker_failed"]
    assert len(failed) == 1
    assert failed[0]["level"] == "error"
    assert "nosuchdriver" in str(failed[0]["error"])
    assert "Traceback" in str(failed[0]["exception"])
