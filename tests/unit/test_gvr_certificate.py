"""GVR's client certificate: its expiry, from PEM or PKCS#12, exported and warned of."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    NoEncryption,
    PrivateFormat,
    pkcs12,
)
from cryptography.x509.oid import NameOID
from pydantic import SecretStr
from structlog.testing import capture_logs

from services.gvr.certificate import certificate_expiry, watch_certificate
from services.gvr.settings import GvrSettings
from shared.delivery.metrics import Metrics


def _certificate(days: int) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "regbridge-gvr-test")])
    now = datetime.now(UTC).replace(microsecond=0)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _pem(tmp_path: Path, days: int) -> tuple[GvrSettings, datetime]:
    key, cert = _certificate(days)
    path = tmp_path / "client.pem"
    key_pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    path.write_bytes(cert.public_bytes(Encoding.PEM) + key_pem)
    return GvrSettings(client_cert=str(path)), cert.not_valid_after_utc


def _expiry(metrics: Metrics) -> float | None:
    return metrics.registry.get_sample_value(
        "regbridge_credential_expiry_timestamp_seconds", {"worker": "gvr"}
    )


def test_the_expiry_is_read_from_pem_and_from_pkcs12(tmp_path: Path) -> None:
    settings, not_after = _pem(tmp_path, 400)
    assert certificate_expiry(settings) == not_after

    key, cert = _certificate(90)
    p12 = tmp_path / "client.p12"
    p12.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"gvr", key, cert, None, BestAvailableEncryption(b"s3cret")
        )
    )
    from_p12 = GvrSettings(client_p12=str(p12), client_p12_password=SecretStr("s3cret"))
    assert certificate_expiry(from_p12) == cert.not_valid_after_utc
    assert certificate_expiry(GvrSettings()) is None


def test_an_expiry_within_thirty_days_is_exported_and_warned_of(tmp_path: Path) -> None:
    settings, not_after = _pem(tmp_path, 10)
    metrics = Metrics()

    with capture_logs() as logs:
        watch_certificate(settings, metrics, "gvr")

    assert _expiry(metrics) == not_after.timestamp()
    (warning,) = [entry for entry in logs if entry["event"] == "credential_expiring"]
    assert warning["register"] == "GVR"
    assert warning["days_left"] in (9, 10, 11)
    assert "GVR client certificate expires" in warning["alarm"]


@pytest.mark.parametrize("case", ["far", "none", "unreadable"])
def test_a_distant_unknown_or_unreadable_certificate(tmp_path: Path, case: str) -> None:
    metrics = Metrics()
    if case == "far":
        settings, _ = _pem(tmp_path, 200)
    elif case == "none":
        settings = GvrSettings()
    else:
        (tmp_path / "broken.pem").write_text("not a certificate")
        settings = GvrSettings(client_cert=str(tmp_path / "broken.pem"))

    with capture_logs() as logs:
        watch_certificate(settings, metrics, "gvr")

    events = [entry["event"] for entry in logs]
    if case == "far":
        assert _expiry(metrics) is not None
        assert events == []
    else:
        assert _expiry(metrics) is None
        expected = "credential_expiry_unknown" if case == "none" else "credential_expiry_unreadable"
        assert events == [expected]
