"""ClientCredentialsAuth: one token for many requests, early refresh, one 401 retry, no secrets."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from pydantic import SecretStr
from structlog.testing import capture_logs

from shared.delivery.classify import classify_exception, is_transient, pauses_worker
from shared.delivery.errors import ConfigurationError, DeliveryError, ThrottledError
from shared.oauth2 import ClientCredentialsAuth, TokenRequestError, days_left

TOKEN_URL = "https://nvr.test/oauth2/token"
SECRET = "s3cr3t-V@lue/with+chars"
Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Register:
    """A token endpoint and an API that accepts the tokens it lists as valid."""

    def __init__(self, *, expires_in: int = 300, api_status: int | None = None) -> None:
        self.issued: list[str] = []
        self.token_requests: list[httpx.Request] = []
        self.api_requests: list[httpx.Request] = []
        self.api_tokens: list[str] = []  # the header as sent (a retry re-sends the same Request)
        self.revoked: set[str] = set()
        self.expires_in = expires_in
        self.api_status = api_status
        self.token_answer: httpx.Response | None = None

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.001)  # let concurrent requests interleave
        if request.url.path == "/oauth2/token":
            self.token_requests.append(request)
            if self.token_answer is not None:
                return self.token_answer
            token = f"token-{len(self.issued) + 1}"
            self.issued.append(token)
            return httpx.Response(
                200,
                json={"access_token": token, "token_type": "Bearer", "expires_in": self.expires_in},
            )
        self.api_requests.append(request)
        self.api_tokens.append(request.headers.get("authorization", ""))
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if self.api_status is not None:
            return httpx.Response(self.api_status)
        if token not in self.issued or token in self.revoked:
            return httpx.Response(401, headers={"www-authenticate": 'Bearer error="invalid_token"'})
        return httpx.Response(200, json={"token": token})


def client_for(register: Handler, auth: ClientCredentialsAuth) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url="https://nvr.test", auth=auth, transport=httpx.MockTransport(register)
    )


def make_auth(clock: FakeClock | None = None, **options: Any) -> ClientCredentialsAuth:
    secret = SecretStr(SECRET)
    return ClientCredentialsAuth(
        TOKEN_URL, "regbridge-test", secret, clock=clock or FakeClock(), **options
    )


async def test_fifty_concurrent_requests_fetch_one_token() -> None:
    register = Register()
    auth = make_auth()
    async with client_for(register, auth) as client:
        responses = await asyncio.gather(*(client.get("/fhir/x") for _ in range(50)))

    assert [r.status_code for r in responses] == [200] * 50
    assert len(register.token_requests) == 1
    assert {r.json()["token"] for r in responses} == {"token-1"}
    assert auth.tokens_fetched == 1


async def test_token_is_sent_with_basic_client_credentials() -> None:
    register = Register()
    async with client_for(register, make_auth()) as client:
        await client.get("/fhir/x")

    (token_request,) = register.token_requests
    assert token_request.method == "POST"
    assert token_request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qs(token_request.content.decode()) == {"grant_type": ["client_credentials"]}
    user, _, password = (
        base64.b64decode(token_request.headers["authorization"].removeprefix("Basic "))
        .decode()
        .partition(":")
    )
    assert (user, password) == ("regbridge-test", "s3cr3t-V%40lue%2Fwith%2Bchars")  # RFC 6749 2.3.1
    assert register.api_tokens == ["Bearer token-1"]


async def test_credentials_in_body_and_scope() -> None:
    register = Register()
    async with client_for(register, make_auth(credentials_in_body=True, scope="nvr.report")) as c:
        await c.get("/fhir/x")

    (token_request,) = register.token_requests
    assert "authorization" not in token_request.headers
    assert parse_qs(token_request.content.decode()) == {
        "grant_type": ["client_credentials"],
        "scope": ["nvr.report"],
        "client_id": ["regbridge-test"],
        "client_secret": [SECRET],
    }


async def test_token_is_cached_then_refreshed_60_seconds_early() -> None:
    # Given a token that lives 300 s
    clock, register = FakeClock(), Register(expires_in=300)
    async with client_for(register, make_auth(clock)) as client:
        await client.get("/fhir/x")
        # When 239 s pass, the cached token is used
        clock.now += 239
        await client.get("/fhir/x")
        assert len(register.token_requests) == 1
        # When 240 s have passed (60 s before expiry), a new one is fetched first
        clock.now += 1
        response = await client.get("/fhir/x")

    assert len(register.token_requests) == 2
    assert response.json()["token"] == "token-2"


async def test_refresh_margin_is_configurable_and_at_most_half_the_lifetime() -> None:
    clock, register = FakeClock(), Register(expires_in=60)
    async with client_for(register, make_auth(clock, refresh_early=120)) as client:
        await client.get("/fhir/x")
        clock.now += 29
        await client.get("/fhir/x")
        assert len(register.token_requests) == 1
        clock.now += 1
        await client.get("/fhir/x")

    assert len(register.token_requests) == 2


async def test_401_refreshes_once_and_retries_once() -> None:
    # Given a cached token the register has revoked
    register = Register()
    async with client_for(register, make_auth()) as client:
        await client.get("/fhir/x")
        register.revoked.add("token-1")
        # When a request is refused with 401
        response = await client.post("/fhir/x", content=b"{}")

    # Then one new token is fetched and the request is sent once more, with its body
    assert response.status_code == 200
    assert len(register.token_requests) == 2
    assert register.api_tokens == [
        "Bearer token-1",
        "Bearer token-1",
        "Bearer token-2",
    ]
    assert register.api_requests[-1].content == b"{}"


async def test_a_second_401_is_returned_not_retried_again() -> None:
    register = Register(api_status=401)
    async with client_for(register, make_auth()) as client:
        response = await client.get("/fhir/x")

    assert response.status_code == 401
    assert len(register.token_requests) == 2
    assert len(register.api_requests) == 2


async def test_concurrent_401s_share_one_refresh() -> None:
    register = Register()
    async with client_for(register, make_auth()) as client:
        await client.get("/fhir/x")
        register.revoked.add("token-1")
        responses = await asyncio.gather(*(client.get("/fhir/x") for _ in range(20)))

    assert {r.status_code for r in responses} == {200}
    assert len(register.token_requests) == 2


async def test_403_is_never_retried() -> None:
    register = Register(api_status=403)
    async with client_for(register, make_auth()) as client:
        response = await client.get("/fhir/x")

    assert response.status_code == 403
    assert len(register.token_requests) == 1
    assert len(register.api_requests) == 1


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (401, {"error": "invalid_client"}),
        (400, {"error": "invalid_client", "error_description": f"bad secret {SECRET}"}),
    ],
)
async def test_refused_credentials_pause_the_worker(status: int, body: dict[str, str]) -> None:
    # Given a token endpoint that refuses the client (its key has expired)
    register = Register()
    register.token_answer = httpx.Response(status, json=body)
    async with client_for(register, make_auth()) as client:
        # When a request needs a token
        with pytest.raises(TokenRequestError) as caught:
            await client.get("/fhir/x")

    # Then no API call is made, and the error is "credentials refused": pause and alarm
    assert register.api_requests == []
    error = classify_exception(caught.value, register="NVR")
    assert isinstance(error, ConfigurationError)
    assert pauses_worker(error)
    assert error.error_class == "credentials_refused"
    assert "credentials refused" in str(error)
    assert "invalid_client" in str(error)
    assert SECRET not in str(caught.value)
    assert SECRET not in str(error)


async def test_token_endpoint_failures_are_classified() -> None:
    def refusal(status: int, error: str | None = None) -> DeliveryError:
        exc = TokenRequestError("token endpoint answered", status=status, error=error)
        return classify_exception(exc, register="NVR")

    unavailable = refusal(503)
    throttled = refusal(429)
    grant = refusal(400, "unsupported_grant_type")
    assert is_transient(unavailable)
    assert unavailable.error_class == "token_unavailable"
    assert isinstance(throttled, ThrottledError)
    assert is_transient(throttled)
    assert isinstance(grant, ConfigurationError)
    assert grant.error_class == "token_bad_answer"


async def test_token_answer_without_access_token_is_a_configuration_error() -> None:
    register = Register()
    register.token_answer = httpx.Response(200, text="<html>login</html>")
    async with client_for(register, make_auth()) as client:
        with pytest.raises(TokenRequestError) as caught:
            await client.get("/fhir/x")

    error = classify_exception(caught.value, register="NVR")
    assert isinstance(error, ConfigurationError)
    assert error.error_class == "token_bad_answer"


async def test_unreachable_token_endpoint_is_transient_and_the_lock_is_released() -> None:
    # Given a token endpoint that cannot be reached once
    register = Register()
    failures = [httpx.ConnectError("connection refused")]

    async def flaky(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth2/token" and failures:
            raise failures.pop()
        return await register(request)

    async with client_for(flaky, make_auth()) as client:
        with pytest.raises(httpx.ConnectError) as caught:
            await client.get("/fhir/x")
        assert is_transient(classify_exception(caught.value, register="NVR"))
        # When the next request comes, the lock is free and a token is fetched
        response = await asyncio.wait_for(client.get("/fhir/x"), timeout=2)

    assert response.status_code == 200


async def test_secret_and_tokens_stay_out_of_repr_and_logs() -> None:
    auth = make_auth()
    register = Register()
    with capture_logs() as logs:
        async with client_for(register, auth) as client:
            await client.get("/fhir/x")
            register.revoked.add("token-1")
            await client.get("/fhir/x")

    assert SECRET not in repr(auth)
    assert "regbridge-test" in repr(auth)
    assert {entry["event"] for entry in logs} >= {"oauth2_token_fetched", "oauth2_token_refused"}
    text = repr(logs)
    assert SECRET not in text
    assert "token-1" not in text
    assert "token-2" not in text


def test_plain_string_secret_is_wrapped() -> None:
    auth = ClientCredentialsAuth(TOKEN_URL, "id", SECRET)

    assert SECRET not in repr(auth)
    assert SECRET not in repr(vars(auth))


def test_sync_clients_are_not_supported() -> None:
    transport = httpx.MockTransport(lambda _: httpx.Response(200))
    client = httpx.Client(auth=make_auth(), transport=transport)
    with client, pytest.raises(NotImplementedError):
        client.get("https://nvr.test/x")


def test_days_left() -> None:
    assert days_left(date(2026, 3, 1), today=date(2026, 2, 1)) == 28
    assert days_left(date(2026, 3, 1), today=date(2026, 3, 1)) == 0
    assert days_left(date(2026, 3, 1), today=date(2026, 3, 3)) == -2
    assert isinstance(days_left(date(2030, 1, 1)), int)
