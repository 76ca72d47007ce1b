"""Logs are structured, and a personal identity number never appears in clear in any line."""

from __future__ import annotations

import json
import logging

import pytest
import structlog

from shared.logging import configure_logging, get_logger
from shared.settings import LogFormat

PNR = "191212121212"
SNR = "197010632391"


@pytest.fixture(autouse=True)
def _reset_structlog() -> None:
    yield
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()


def test_structlog_line_masks_identity_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", LogFormat.JSON)

    get_logger("test").info(
        "event_received",
        patient_id=PNR,
        payload={"patient": {"id": SNR}, "note": f"display form {PNR[2:8]}-{PNR[8:]}"},
        ids=[PNR],
    )

    line = capsys.readouterr().err.strip().splitlines()[-1]
    record = json.loads(line)
    assert record["event"] == "event_received"
    assert record["level"] == "info"
    for clear in (PNR, SNR, "121212-1212"):
        assert clear not in line
    assert record["patient_id"].startswith("19121212")


def test_stdlib_and_exception_lines_are_masked_too(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", LogFormat.JSON)

    logging.getLogger("faststream.access").warning("rejected %s", PNR)
    try:
        raise ValueError(f"bad patient {PNR}")
    except ValueError:
        get_logger("test").exception("handler_failed")

    err = capsys.readouterr().err
    assert PNR not in err
    assert "rejected 19121212" in err
    assert "handler_failed" in err
    assert "ValueError" in err


def test_console_format_masks_as_well(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", LogFormat.CONSOLE)

    get_logger("test").info("event_received", patient_id=PNR)

    err = capsys.readouterr().err
    assert "event_received" in err
    assert PNR not in err
