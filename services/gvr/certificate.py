"""When GVR's client certificate expires: read from the configured PEM or PKCS#12 file, exported
as a gauge and warned about in the log, as NVR's client secret is (services/nvr/spec.py)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12

from services.gvr.settings import GvrSettings
from shared.delivery.metrics import Metrics
from shared.logging import get_logger
from shared.oauth2 import days_left

log = get_logger(__name__)
STOCKHOLM = ZoneInfo("Europe/Stockholm")
WARN_DAYS = 30  # as the alert RegbridgeGvrCertificateExpiring


def certificate_expiry(settings: GvrSettings) -> datetime | None:
    """`notAfter` of the client certificate (the first in `client_cert`, or the PKCS#12 file's
    own); None when no certificate is configured. OSError / ValueError when it cannot be read."""
    if settings.client_p12:
        password = settings.client_p12_password
        _, cert, _ = pkcs12.load_key_and_certificates(
            Path(settings.client_p12).read_bytes(),
            password.get_secret_value().encode() if password is not None else None,
        )
        if cert is None:
            raise ValueError("the PKCS#12 file holds no certificate")
        return cert.not_valid_after_utc
    if settings.client_cert:
        return x509.load_pem_x509_certificate(
            Path(settings.client_cert).read_bytes()
        ).not_valid_after_utc
    return None


def watch_certificate(settings: GvrSettings, metrics: Metrics, worker: str) -> None:
    """Export the client certificate's expiry (alert rules: within 30 and 7 days) and warn in
    the log from `WARN_DAYS` before; a certificate that cannot be read is said, not raised (the
    TLS set-up reports that itself)."""
    try:
        expires_at = certificate_expiry(settings)
    except (OSError, ValueError) as exc:
        log.warning("credential_expiry_unreadable", register="GVR", error=type(exc).__name__)
        return
    if expires_at is None:
        log.warning(
            "credential_expiry_unknown",
            register="GVR",
            hint="no client certificate configured (REGBRIDGE_GVR_CLIENT_CERT or CLIENT_P12)",
        )
        return
    metrics.credential_expiry.labels(worker).set(expires_at.timestamp())
    left = days_left(expires_at.astimezone(STOCKHOLM).date(), today=datetime.now(STOCKHOLM).date())
    if left <= WARN_DAYS:
        log.warning(
            "credential_expiring",
            register="GVR",
            expires_at=expires_at.isoformat(),
            days_left=left,
            alarm=f"GVR client certificate expires in {left} days: order a new SITHS certificate",
        )
