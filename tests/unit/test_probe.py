"""RegisterProbe: only a ConfigurationError makes a worker not ready; it recovers when fixed."""

from __future__ import annotations

from shared.delivery.errors import ConfigurationError, DeliveryError, RegisterUnavailableError
from shared.delivery.probe import RegisterProbe


def scripted(*answers: DeliveryError | None) -> RegisterProbe:
    pending = list(answers)

    async def check() -> DeliveryError | None:
        return pending.pop(0)

    return RegisterProbe("R", check)


async def test_refused_credentials_make_the_worker_not_ready_until_they_are_accepted() -> None:
    refused = ConfigurationError("certificate refused", error_class="tls_handshake")
    probe = scripted(refused, None)
    assert probe.ready
    assert not probe.describe()["checked"]
    await probe.check_once()
    assert not probe.ready
    assert probe.describe() == {
        "ready": False,
        "checked": True,
        "error_class": "tls_handshake",
        "error": "certificate refused",
    }
    await probe.check_once()
    assert probe.ready
    assert probe.describe()["error"] is None


async def test_a_register_that_is_down_leaves_readiness_to_the_runtime() -> None:
    probe = scripted(RegisterUnavailableError("down", error_class="register_unreachable"))
    await probe.check_once()
    assert probe.ready
    assert probe.describe()["error_class"] == "register_unreachable"
