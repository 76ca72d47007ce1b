"""GvrClient against a real mutual-TLS server (trustme CA, uvicorn with CERT_REQUIRED)."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import socket
import ssl
import tempfile
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    load_pem_private_key,
    pkcs12,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.gvr.client import GvrClient, build_ssl_context
from services.gvr.mapping import GvrPaths, GvrRequest, lookup_request, to_gvr_request
from services.gvr.settings import GvrSettings
from shared.contracts import CARE_CONTACT_EXAMPLES, CareContactEvent, parse_event
from shared.delivery.classify import is_permanent
from shared.delivery.errors import (
    ConfigurationError,
    DeliveryError,
    NotYetAppliedError,
    RegisterRejectedError,
    RegisterUnavailableError,
    ThrottledError,
)
from shared.delivery.worker import Accepted

pytestmark = pytest.mark.integration

P12_PASSWORD = "p12-secret"
FEL = {
    "fel": [
        {"falt": "taxa", "kod": "GVR-1042", "meddelande": "Taxan A101 gäller inte 2025-03-14"},
        {"falt": "akut", "kod": "GVR-1007", "meddelande": "Akut måste vara J eller N"},
    ]
}


# --- a scripted GVR behind mutual TLS ------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any = None  # dict → JSON, str → text
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    query: str  # as it arrived on the wire
    body: Any


class ScriptedGvr:
    """Answers with the queued `Answer`s in order (a GVR-like default when none is queued)."""

    def __init__(self) -> None:
        self.answers: deque[Answer] = deque()
        self.seen: deque[Seen] = deque()
        self.app = Starlette(
            routes=[Route("/{path:path}", self._answer, methods=["GET", "POST", "PUT", "DELETE"])]
        )

    def reset(self) -> None:
        self.answers.clear()
        self.seen.clear()

    async def _answer(self, request: Request) -> Response:
        raw = await request.body()
        body = json.loads(raw) if raw else None
        self.seen.append(Seen(request.method, request.url.path, request.url.query, body))
        answer = self.answers.popleft() if self.answers else _default(request)
        await asyncio.sleep(answer.delay)
        if isinstance(answer.body, str):
            return Response(answer.body, answer.status, answer.headers, "text/html")
        return JSONResponse(answer.body, answer.status, answer.headers)


def _default(request: Request) -> Answer:
    if request.method == "POST":
        return Answer(201, {"id": "GVR-0000001", "status": "REGISTRERAD"})
    if request.method == "GET":
        return Answer(200, {"traffar": []})
    status = "MAKULERAD" if request.method == "DELETE" else "RATTAD"
    return Answer(200, {"id": request.query_params.get("id", "?"), "status": status})


class MtlsServer:
    """uvicorn over HTTPS on 127.0.0.1 that requires a client certificate from `client_ca`.

    (services/sandboxes/server.py's ServerThread takes no TLS options.)
    """

    def __init__(self, app: Starlette, *, certfile: Path, client_ca: Path) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        self.port: int = sock.getsockname()[1]
        self._sock = sock
        config = uvicorn.Config(
            app,
            http="h11",
            loop="asyncio",
            lifespan="off",
            log_config=None,
            log_level="critical",  # rejected handshakes are the point of some tests
            access_log=False,
            ssl_certfile=str(certfile),
            ssl_ca_certs=str(client_ca),
            ssl_cert_reqs=ssl.CERT_REQUIRED,
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True, name="gvr-mtls"
        )

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def __enter__(self) -> MtlsServer:
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the mutual-TLS test server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._sock.close()


@dataclass(frozen=True)
class Pki:
    ca: Path  # the CA of the server and of the accepted client certificate
    server: Path  # server key + chain
    client_cert: Path
    client_key: Path
    client_p12: Path
    foreign_cert: Path  # a client certificate from another CA (like a test cert in production)
    foreign_key: Path
    foreign_ca: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("gvr-pki")
    ca, foreign = trustme.CA(), trustme.CA()
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    foreign.cert_pem.write_to_path(str(folder / "foreign-ca.pem"))
    server = ca.issue_cert("127.0.0.1", "localhost")
    server.private_key_and_cert_chain_pem.write_to_path(str(folder / "server.pem"))
    for name, issuer in (("client", ca), ("foreign", foreign)):
        leaf = issuer.issue_cert("regbridge-gvr.test", common_name="regbridge GVR worker")
        leaf.cert_chain_pems[0].write_to_path(str(folder / f"{name}-cert.pem"))
        leaf.private_key_pem.write_to_path(str(folder / f"{name}-key.pem"))
    key = load_pem_private_key((folder / "client-key.pem").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    cert = x509.load_pem_x509_certificate((folder / "client-cert.pem").read_bytes())
    p12 = pkcs12.serialize_key_and_certificates(
        b"regbridge-gvr", key, cert, None, BestAvailableEncryption(P12_PASSWORD.encode())
    )
    (folder / "client.p12").write_bytes(p12)
    return Pki(
        ca=folder / "ca.pem",
        server=folder / "server.pem",
        client_cert=folder / "client-cert.pem",
        client_key=folder / "client-key.pem",
        client_p12=folder / "client.p12",
        foreign_cert=folder / "foreign-cert.pem",
        foreign_key=folder / "foreign-key.pem",
        foreign_ca=folder / "foreign-ca.pem",
    )


@pytest.fixture(scope="module")
def scripted() -> ScriptedGvr:
    return ScriptedGvr()


@pytest.fixture(scope="module")
def server(scripted: ScriptedGvr, pki: Pki) -> Iterator[MtlsServer]:
    with MtlsServer(scripted.app, certfile=pki.server, client_ca=pki.ca) as running:
        yield running


@pytest.fixture
def gvr(scripted: ScriptedGvr, server: MtlsServer) -> ScriptedGvr:
    scripted.reset()
    return scripted


def settings_for(server: MtlsServer, pki: Pki, **changes: Any) -> GvrSettings:
    values: dict[str, Any] = {
        "base_url": server.base_url,
        "ca_bundle": str(pki.ca),
        "client_cert": str(pki.client_cert),
        "client_key": str(pki.client_key),
        "read_timeout": 5.0,
    }
    return GvrSettings(**(values | changes))


@pytest.fixture
async def client(gvr: ScriptedGvr, server: MtlsServer, pki: Pki) -> AsyncIterator[GvrClient]:
    async with GvrClient.from_settings(settings_for(server, pki)) as pem_client:
        yield pem_client


def event(kind: str = "outpatient_visit", operation: str = "create") -> CareContactEvent:
    raw = copy.deepcopy(CARE_CONTACT_EXAMPLES[kind])
    raw["operation"] = operation
    parsed = parse_event(json.dumps(raw).encode())
    assert isinstance(parsed, CareContactEvent)
    return parsed


def mapped(operation: str = "create", reference: str | None = None) -> GvrRequest:
    return to_gvr_request(event(operation=operation), reference, GvrPaths())


# --- getting through -----------------------------------------------------------------------------


async def test_a_pem_client_certificate_gets_through_and_a_create_returns_gvrs_id(
    client: GvrClient, gvr: ScriptedGvr
) -> None:
    # Given GVR that answers 201 with its id
    gvr.answers.append(Answer(201, {"id": "GVR-0000123", "status": "REGISTRERAD"}))
    # When a mapped create is sent over mutual TLS with a PEM certificate and key
    outcome = await client.send(mapped("create"), operation="create")
    # Then it is accepted under GVR's id, and GVR got exactly the mapped body
    assert outcome == Accepted("GVR-0000123")
    (seen,) = gvr.seen
    assert (seen.method, seen.path, seen.query) == ("POST", "/vardhandelse/besok", "")
    assert seen.body == mapped("create").json


async def test_a_pkcs12_client_certificate_gets_through(
    gvr: ScriptedGvr, server: MtlsServer, pki: Pki
) -> None:
    settings = settings_for(
        server,
        pki,
        client_cert=None,
        client_key=None,
        client_p12=str(pki.client_p12),
        client_p12_password=P12_PASSWORD,
    )
    async with GvrClient.from_settings(settings) as p12_client:
        assert await p12_client.send(mapped("create")) == Accepted("GVR-0000001")
    assert [seen.method for seen in gvr.seen] == ["POST"]


def test_pkcs12_without_memfd_goes_through_a_private_file_that_is_removed(
    pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a platform without memfd_create, and a temporary folder we can watch
    monkeypatch.delattr(os, "memfd_create", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    written: list[int] = []
    real_mkstemp = tempfile.mkstemp

    def watched_mkstemp(*args: Any, **kwargs: Any) -> tuple[int, str]:
        fd, path = real_mkstemp(*args, **kwargs)
        written.append(os.stat(path).st_mode & 0o777)
        return fd, path

    monkeypatch.setattr(tempfile, "mkstemp", watched_mkstemp)
    # When the PKCS#12 file is loaded
    context = build_ssl_context(
        ca_bundle=str(pki.ca), client_p12=str(pki.client_p12), client_p12_password=P12_PASSWORD
    )
    # Then the key passed through one 0600 file, which is gone
    assert isinstance(context, ssl.SSLContext)
    assert written == [0o600]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"client_p12_password": "wrong"}, "ValueError"),  # cryptography: invalid password
        ({"client_p12": "/nonexistent/client.p12"}, "FileNotFoundError"),
        ({"client_p12": None, "client_cert": "CA"}, "SSLError"),  # a certificate without its key
        ({"client_p12": None, "client_key": "x.pem"}, "without client_cert"),
        ({"client_key": "x.pem"}, "not both"),
        ({"client_p12": None, "ca_bundle": "/nonexistent/ca.pem"}, "FileNotFoundError"),
    ],
)
def test_unusable_tls_files_are_a_configuration_error(
    pki: Pki, changes: dict[str, str | None], why: str
) -> None:
    values: dict[str, str | None] = {
        "ca_bundle": str(pki.ca),
        "client_p12": str(pki.client_p12),
        "client_p12_password": P12_PASSWORD,
    }
    values |= {name: str(pki.ca) if value == "CA" else value for name, value in changes.items()}
    with pytest.raises(ConfigurationError) as raised:
        build_ssl_context(**values)
    assert raised.value.error_class == "tls_config"
    assert why in raised.value.message
    assert P12_PASSWORD not in raised.value.message


# --- each answer has its fate --------------------------------------------------------------------


async def test_a_400_is_rejected_with_gvrs_own_error_text(
    client: GvrClient, gvr: ScriptedGvr
) -> None:
    gvr.answers.append(Answer(400, FEL))
    outcome = await client.send(mapped("create"), operation="create")
    assert isinstance(outcome, RegisterRejectedError)
    assert (outcome.error_class, outcome.register_status) == ("register_rejected", 400)
    assert outcome.register_response is not None
    assert json.loads(outcome.register_response) == FEL
    assert "Taxan A101 gäller inte 2025-03-14" in outcome.register_response
    assert outcome.message.startswith('GVR answered 400: {"fel":')


@pytest.mark.parametrize(
    ("answer", "error_type", "error_class"),
    [
        (Answer(409, {"fel": [{"kod": "GVR-2001"}]}), RegisterRejectedError, "register_duplicate"),
        (Answer(503, {"fel": "underhåll"}), RegisterUnavailableError, "register_maintenance"),
        (Answer(500, "oops"), RegisterUnavailableError, "register_unavailable"),
        (Answer(401), ConfigurationError, "register_unauthorized"),
        (Answer(403), ConfigurationError, "register_forbidden"),
        (Answer(404), RegisterRejectedError, "register_not_found"),
    ],
)
async def test_statuses_are_classified_in_the_one_place(
    client: GvrClient,
    gvr: ScriptedGvr,
    answer: Answer,
    error_type: type[DeliveryError],
    error_class: str,
) -> None:
    gvr.answers.append(answer)
    outcome = await client.send(mapped("create"), operation="create")
    assert type(outcome) is error_type
    assert isinstance(outcome, error_type)
    assert (outcome.error_class, outcome.register_status) == (error_class, answer.status)


async def test_a_429_is_throttled_for_as_long_as_gvr_says(
    client: GvrClient, gvr: ScriptedGvr
) -> None:
    gvr.answers.append(Answer(429, {"fel": []}, {"Retry-After": "7"}))
    outcome = await client.send(mapped("create"))
    assert isinstance(outcome, ThrottledError)
    assert (outcome.retry_after, outcome.register_status) == (7.0, 429)


async def test_a_404_on_a_correction_waits_for_its_create(
    client: GvrClient, gvr: ScriptedGvr
) -> None:
    gvr.answers.append(Answer(404, {"fel": [{"kod": "GVR-4040"}]}))
    outcome = await client.send(mapped("correct", "GVR-0000009"), operation="correct")
    assert isinstance(outcome, NotYetAppliedError)


async def test_a_2xx_create_without_an_id_pauses_instead_of_guessing(
    client: GvrClient, gvr: ScriptedGvr
) -> None:
    # Given something at base_url that answers 200 with a page (a proxy's login page, say)
    gvr.answers.append(Answer(200, "<html>Logga in</html>"))
    outcome = await client.send(mapped("create"))
    assert isinstance(outcome, ConfigurationError)
    assert outcome.error_class == "register_bad_answer"
    assert outcome.register_response == "<html>Logga in</html>"


async def test_a_slow_answer_is_a_timeout_to_retry(
    gvr: ScriptedGvr, server: MtlsServer, pki: Pki
) -> None:
    gvr.answers.append(Answer(201, {"id": "GVR-1"}, delay=1.0))
    async with GvrClient.from_settings(settings_for(server, pki, read_timeout=0.2)) as impatient:
        outcome = await impatient.send(mapped("create"))
    assert isinstance(outcome, RegisterUnavailableError)
    assert outcome.error_class == "register_timeout"


async def test_a_closed_port_is_unreachable_to_retry(pki: Pki) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        settings = GvrSettings(
            base_url=f"https://127.0.0.1:{port}",
            ca_bundle=str(pki.ca),
            client_cert=str(pki.client_cert),
            client_key=str(pki.client_key),
        )
        async with GvrClient.from_settings(settings) as nowhere:
            outcome = await nowhere.send(mapped("create"))
    assert isinstance(outcome, RegisterUnavailableError)
    assert outcome.error_class == "register_unreachable"


# --- correct, cancel, find on the wire -----------------------------------------------------------


async def test_a_correction_puts_to_the_reference_and_is_accepted_under_it(
    client: GvrClient, gvr: ScriptedGvr
) -> None:
    outcome = await client.send(mapped("correct", "GVR-0000042"), operation="correct")
    assert outcome == Accepted("GVR-0000042")
    (seen,) = gvr.seen
    assert (seen.method, seen.path) == ("PUT", "/vardhandelse/besok/GVR-0000042")
    assert seen.body == mapped("create").json


async def test_a_cancellation_sends_dot_notation_query_parameters(
    client: GvrClient, gvr: ScriptedGvr
) -> None:
    outcome = await client.send(mapped("cancel", "GVR-0000042"), operation="cancel")
    assert outcome == Accepted("GVR-0000042")
    (seen,) = gvr.seen
    assert (seen.method, seen.path, seen.body) == ("DELETE", "/vardhandelse/besok", None)
    # the names go out in dot notation, unescaped, in order; ':' may travel as itself or %3A
    assert seen.query.replace("%3A", ":") == (
        "id=GVR-0000042&patientId=191212121212&enhet.inr=11010&enhet.klin=046&enhet.avd=M30"
        "&besoksdatum=2025-03-14&besokstid=09:30"
    )


async def test_find_returns_the_id_of_our_live_record_only(
    client: GvrClient, gvr: ScriptedGvr
) -> None:
    # Given GVR has, under the key: a makulerad record of ours, someone else's, and ours
    body = mapped("create").json
    assert body is not None
    ours = {**body, "id": "GVR-0000777", "status": "REGISTRERAD"}
    hits = [
        {**ours, "id": "GVR-0000700", "status": "MAKULERAD"},
        {**ours, "id": "GVR-0000701", "kallId": "another-record"},
        ours,
    ]
    lookup = lookup_request(event(), GvrPaths())
    gvr.answers.append(Answer(200, {"traffar": hits}))
    # When a create is reconciled, Then the live record with our kallsystem + kallId is found
    assert await client.find(lookup) == "GVR-0000777"
    (seen,) = gvr.seen
    assert (seen.method, seen.path) == ("GET", "/vardhandelse/besok")
    assert seen.query.replace("%3A", ":") == (
        "patientId=191212121212&enhet.inr=11010&enhet.klin=046&enhet.avd=M30"
        "&besoksdatum=2025-03-14&besokstid=09:30"
    )
    # And a cancellation counts as applied only by the makulerad one
    gvr.answers.append(Answer(200, {"traffar": hits}))
    assert await client.find(lookup_request(event(operation="cancel"), GvrPaths())) == (
        "GVR-0000700"
    )
    # And a correction only when GVR holds the corrected record (here it holds the original)
    corrected = event(operation="correct")
    raw = json.loads(corrected.model_dump_json())
    raw["payload"]["akut"] = "J"
    changed = parse_event(json.dumps(raw).encode())
    assert isinstance(changed, CareContactEvent)
    gvr.answers.append(Answer(200, {"traffar": hits}))
    assert await client.find(lookup_request(changed, GvrPaths())) is None
    gvr.answers.append(Answer(200, {"traffar": hits}))
    assert await client.find(lookup_request(corrected, GvrPaths())) == "GVR-0000777"
    # And nothing under the key is None
    assert await client.find(lookup) is None


async def test_find_raises_what_gvr_answered(client: GvrClient, gvr: ScriptedGvr) -> None:
    gvr.answers.append(Answer(503, {"fel": "underhåll"}))
    with pytest.raises(RegisterUnavailableError):
        await client.find(lookup_request(event(), GvrPaths()))
    gvr.answers.append(Answer(200, "<html/>"))
    with pytest.raises(ConfigurationError):
        await client.find(lookup_request(event(), GvrPaths()))


# --- certificates GVR does not accept ------------------------------------------------------------

# With TLS 1.3 the server judges the client certificate after the client's handshake is done, so
# the client learns of the rejection only when it reads (or writes) the request. What it sees is a
# race: the server's alert (an SSLError → ConfigurationError "tls_handshake": pause) when it reads
# that first, or a reset/closed connection (→ RegisterUnavailableError "register_unreachable":
# retry) when the close wins. uvicorn's asyncio TLS closes without an alert, so here it is nearly
# always the second; a server that sends the alert gives either, run to run.
REJECTED_CLIENT_CERTIFICATE = {
    ("ConfigurationError", "tls_handshake"),
    ("RegisterUnavailableError", "register_unreachable"),
}


def fate(outcome: Accepted | DeliveryError) -> tuple[str, str]:
    assert isinstance(outcome, DeliveryError)
    return type(outcome).__name__, outcome.error_class


async def test_a_server_certificate_from_another_ca_pauses_the_worker(
    server: MtlsServer, pki: Pki
) -> None:
    # Given a client that trusts another CA than the one GVR's certificate chains to
    settings = settings_for(server, pki, ca_bundle=str(pki.foreign_ca))
    async with GvrClient.from_settings(settings) as client:
        outcome = await client.send(mapped("create"))
    # Then the handshake fails and the worker pauses: no event is at fault
    assert isinstance(outcome, ConfigurationError)
    assert outcome.error_class == "tls_handshake"
    assert "CERTIFICATE_VERIFY_FAILED" in outcome.message


async def test_a_client_certificate_from_another_ca_is_never_a_dead_letter(
    gvr: ScriptedGvr, server: MtlsServer, pki: Pki
) -> None:
    # Given a client certificate from another CA (a test certificate against production)
    settings = settings_for(
        server, pki, client_cert=str(pki.foreign_cert), client_key=str(pki.foreign_key)
    )
    async with GvrClient.from_settings(settings) as client:
        outcome = await client.send(mapped("create"))
    # Then the request never reached the app, and the event is not dead-lettered for it
    assert list(gvr.seen) == []
    assert not isinstance(outcome, Accepted)
    assert not is_permanent(outcome)
    assert fate(outcome) in REJECTED_CLIENT_CERTIFICATE


async def test_no_client_certificate_is_never_a_dead_letter(
    gvr: ScriptedGvr, server: MtlsServer, pki: Pki
) -> None:
    settings = settings_for(server, pki, client_cert=None, client_key=None)
    async with GvrClient.from_settings(settings) as client:
        outcome = await client.send(mapped("create"))
    assert list(gvr.seen) == []
    assert not isinstance(outcome, Accepted)
    assert not is_permanent(outcome)
    assert fate(outcome) in REJECTED_CLIENT_CERTIFICATE


async def test_the_same_server_accepts_a_plain_httpx_client_with_the_right_certificate(
    gvr: ScriptedGvr, server: MtlsServer, pki: Pki
) -> None:
    # A control for the two tests above: the server is reachable, only the certificate differed
    context = build_ssl_context(
        ca_bundle=str(pki.ca), client_cert=str(pki.client_cert), client_key=str(pki.client_key)
    )
    async with httpx.AsyncClient(verify=context, base_url=server.base_url) as plain:
        response = await plain.get("/vardhandelse/besok")
    assert response.json() == {"traffar": []}
