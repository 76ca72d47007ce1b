"""NVR's client secret lasts a year: its expiry is exported and warned of before it comes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from structlog.testing import capture_logs

from services.nvr.settings import NvrSettings
from services.nvr.spec import watch_credential
from shared.delivery.metrics import Metrics


def _expiry(metrics: Metrics) -> float | None:
    return metrics.registry.get_sample_value(
        "regbridge_credential_expiry_timestamp_seconds", {"worker": "nvr"}
    )


def test_an_expiry_within_the_warning_days_is_exported_and_warned_of() -> None:
    expires_on = date.today() + timedelta(days=10)
    metrics = Metrics()

    with capture_logs() as logs:
        watch_credential(NvrSettings(client_secret_expires_on=expires_on), metrics, "nvr")

    midnight = datetime(expires_on.year, expires_on.month, expires_on.day, tzinfo=UTC)
    assert _expiry(metrics) == midnight.timestamp()
    (warning,) = [entry for entry in logs if entry["event"] == "credential_expiring"]
    assert warning["days_left"] in (9, 10, 11)  # Stockholm's today may differ from the host's
    assert "renew it with Folkhälsomyndigheten" in warning["alarm"]


def test_a_distant_expiry_is_exported_quietly_and_an_unknown_one_is_said_to_be_unknown() -> None:
    metrics, unknown = Metrics(), Metrics()
    far = NvrSettings(client_secret_expires_on=date.today() + timedelta(days=200))

    with capture_logs() as logs:
        watch_credential(far, metrics, "nvr")
        watch_credential(NvrSettings(client_secret_expires_on=None), unknown, "nvr")

    assert _expiry(metrics) is not None
    assert _expiry(unknown) is None
    assert [entry["event"] for entry in logs] == ["credential_expiry_unknown"]
