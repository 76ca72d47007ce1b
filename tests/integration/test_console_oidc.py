"""OpenID Connect login over real HTTP: the console (uvicorn) and a provider (uvicorn), an httpx
client following the redirects with its cookies, as a browser would."""

from __future__ import annotations

import base64
import html
import json
import re
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from services.console.app import create_app
from services.console.settings import ConsoleSettings
from tests.support.console import serving
from tests.support.oidc_provider import OidcProvider, OidcUser, oidc_provider

pytestmark = pytest.mark.integration

OPERATOR = OidcUser("u-0001", "alice", "Alice Andersson", ["regbridge-operator", "staff"])
VIEWER = OidcUser("u-0002", "vera", "Vera Viklund", ["regbridge-viewer"])
NOBODY = OidcUser("u-0003", "nils", "Nils Nilsson", ["staff"])


@dataclass
class OidcStack:
    url: str  # the console
    provider: OidcProvider


@pytest.fixture
def provider() -> Iterator[OidcProvider]:
    with oidc_provider(OPERATOR) as running:
        yield running


def _console(provider: OidcProvider, audit_url: str, secret: str | None = None) -> ConsoleSettings:
    return ConsoleSettings(
        session_secret="s" * 40,  # type: ignore[arg-type]
        secure_cookies=False,  # plain http on loopback
        database_url=audit_url,  # type: ignore[arg-type]
        oidc_issuer=provider.issuer,
        oidc_client_id=provider.client_id,
        oidc_client_secret=secret or provider.client_secret,  # type: ignore[arg-type]
    )


@pytest.fixture
async def stack(provider: OidcProvider, postgres_url: str) -> AsyncIterator[OidcStack]:
    """The console with OIDC only (no local accounts) over no workers, its audit on PostgreSQL."""
    app = create_app(_console(provider, postgres_url), {}, {})
    with serving(app) as url:
        provider.redirect_uris.append(f"{url}/login/oidc/callback")
        yield OidcStack(url, provider)


def _browser(url: str, *, follow: bool = True) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url, follow_redirects=follow, timeout=30)


def _csrf(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None, page.text
    return found.group(1)


def _session_of(client: httpx.AsyncClient) -> dict[str, Any]:
    """The session in the browser's cookie (Starlette's: base64 JSON, a timestamp, a MAC)."""
    cookie = client.cookies.get("regbridge_console")
    if cookie is None:
        return {}
    data: dict[str, Any] = json.loads(base64.b64decode(cookie.split(".")[0]))
    return data


async def _signed_out(client: httpx.AsyncClient) -> bool:
    """True when the console sends this browser to its login page."""
    page = await client.get("/")
    return page.url.path == "/login" and 'id="who"' not in page.text


async def _to_callback(client: httpx.AsyncClient) -> str:
    """The console's redirect to the provider, the provider's back: the callback URL, not yet
    visited (the client must not follow redirects)."""
    start = await client.get("/login/oidc")
    assert start.status_code == 302, start.text
    approved = await client.get(start.headers["location"])
    assert approved.status_code == 302, approved.text
    return str(approved.headers["location"])


async def test_an_operator_signs_in_through_the_provider(stack: OidcStack) -> None:
    async with _browser(stack.url) as client:
        login = await client.get("/login")
        assert 'href="/login/oidc"' in login.text
        page = await client.get("/login/oidc")
        assert page.status_code == 200, page.text
        assert page.url.path == "/"
        assert [r.status_code for r in page.history] == [302, 302, 303]
        assert "alice (operator)" in page.text
        assert _session_of(client)["user"] == "alice"
        assert (await client.get("/audit")).status_code == 200

    authorize, token = stack.provider.seen
    assert authorize["endpoint"] == "authorize"
    assert authorize["code_challenge_method"] == "S256"
    assert authorize["redirect_uri"] == f"{stack.url}/login/oidc/callback"
    assert set(authorize["scope"].split()) >= {"openid", "profile"}
    assert token["endpoint"] == "token"
    assert token["auth"] == "client_secret_basic"
    assert len(token["code_verifier"]) >= 43


async def test_a_viewer_gets_the_viewer_role_and_may_not_replay(stack: OidcStack) -> None:
    stack.provider.user = VIEWER
    async with _browser(stack.url) as client:
        page = await client.get("/login/oidc")
        assert page.url.path == "/"
        assert "vera (viewer)" in page.text
        token = _csrf(page)
        form = {"csrf_token": token, "position": "gvr:0:0", "reason": "curious"}
        for endpoint in ["/replay/plan", "/replay/run"]:
            refused = await client.post(endpoint, data=form)
            assert refused.status_code == 403, endpoint
            assert "only an operator may do this" in refused.text


async def test_an_account_without_a_regbridge_role_is_refused(stack: OidcStack) -> None:
    stack.provider.user = NOBODY
    async with _browser(stack.url) as client:
        page = await client.get("/login/oidc")
        assert page.status_code == 403
        assert "no regbridge role" in page.text
        assert await _signed_out(client)


async def test_a_tampered_state_is_refused_before_the_code_is_redeemed(stack: OidcStack) -> None:
    async with _browser(stack.url, follow=False) as client:
        callback = urlsplit(await _to_callback(client))
        query = {k: v[0] for k, v in parse_qs(callback.query).items()}
        query["state"] = query["state"][:-2] + ("AA" if query["state"][-2:] != "AA" else "BB")
        answer = await client.get(f"{callback.path}?{urlencode(query)}")
        assert answer.status_code == 403
        assert "sign-in failed: mismatching_state" in answer.text
        client.follow_redirects = True
        assert await _signed_out(client)
    assert [seen["endpoint"] for seen in stack.provider.seen] == ["authorize"]


async def test_a_code_from_another_browser_is_refused(stack: OidcStack) -> None:
    """Login CSRF: an attacker's own code and state, sent to a victim's browser."""
    async with _browser(stack.url, follow=False) as attacker:
        callback = await _to_callback(attacker)
    async with _browser(stack.url, follow=False) as victim:
        await victim.get("/login/oidc")  # a sign-in of its own under way
        answer = await victim.get(callback)
        assert answer.status_code == 403
        assert "mismatching_state" in answer.text
        victim.follow_redirects = True
        assert await _signed_out(victim)


def _bad_tokens() -> list[Any]:
    return [
        pytest.param(
            {"nonce": "not-this-sessions"},
            False,
            "invalid_claim: Invalid claim: 'nonce'",
            id="nonce",
        ),
        pytest.param(
            {"iss": "http://127.0.0.1:9/other"}, False, "Invalid claim: 'iss'", id="issuer"
        ),
        # Authlib asks for azp first when aud does not name the client
        pytest.param({"aud": "another-client"}, False, "Missing claim: 'azp'", id="audience"),
        pytest.param({"exp": -600, "iat": -900}, False, "expired_token", id="expired"),
        pytest.param({}, True, "bad_signature", id="foreign-key"),
    ]


@pytest.mark.parametrize(("claims", "foreign_key", "error"), _bad_tokens())
async def test_an_id_token_the_console_cannot_trust_is_refused(
    stack: OidcStack, claims: dict[str, Any], foreign_key: bool, error: str
) -> None:
    now = int(time.time())
    relative = {"exp", "iat"}  # seconds from now
    stack.provider.id_token_claims = {k: now + v if k in relative else v for k, v in claims.items()}
    stack.provider.sign_with_foreign_key = foreign_key
    async with _browser(stack.url) as client:
        page = await client.get("/login/oidc")
        assert page.status_code == 403, page.text
        assert "sign-in failed" in page.text
        assert "sign-in failed: " in page.text
        assert error in html.unescape(page.text)
        assert "alice" not in page.text
        assert await _signed_out(client)
    assert [seen["endpoint"] for seen in stack.provider.seen] == ["authorize", "token"]


async def test_a_provider_announcing_another_issuer_is_refused(
    provider: OidcProvider, postgres_url: str
) -> None:
    """Discovery and tokens agree on an issuer, but it is not the configured one (OIDC
    Discovery §4.3): the tokens are not the configured provider's."""
    other = "https://login.example.invalid/tenant"
    provider.discovery_issuer = other
    provider.id_token_claims = {"iss": other}
    with serving(create_app(_console(provider, postgres_url), {}, {})) as url:
        provider.redirect_uris.append(f"{url}/login/oidc/callback")
        async with _browser(url) as client:
            page = await client.get("/login/oidc")
            assert page.status_code == 403, page.text
            assert "Invalid claim: 'iss'" in html.unescape(page.text)
            assert await _signed_out(client)


async def test_a_wrong_client_secret_is_refused(provider: OidcProvider, postgres_url: str) -> None:
    app = create_app(_console(provider, postgres_url, secret="not-the-secret"), {}, {})
    with serving(app) as url:
        provider.redirect_uris.append(f"{url}/login/oidc/callback")
        async with _browser(url) as client:
            page = await client.get("/login/oidc")
            assert page.status_code == 403, page.text
            assert "sign-in failed: invalid_client" in page.text
            assert await _signed_out(client)


async def test_behind_an_ingress_the_configured_redirect_uri_is_used(
    provider: OidcProvider, postgres_url: str
) -> None:
    """The console served as http:// behind a TLS ingress at another host: the provider knows
    only the public https callback; the browser's callback reaches the console through the
    ingress (here: the test carries its query over)."""
    public = "https://console.example.invalid/login/oidc/callback"
    provider.redirect_uris.append(public)
    settings = _console(provider, postgres_url).model_copy(update={"oidc_redirect_uri": public})
    with serving(create_app(settings, {}, {})) as url:
        async with _browser(url, follow=False) as client:
            callback = urlsplit(await _to_callback(client))
            assert f"{callback.scheme}://{callback.netloc}{callback.path}" == public
            client.follow_redirects = True
            page = await client.get(f"{callback.path}?{callback.query}")
            assert page.url.path == "/"
            assert "alice (operator)" in page.text
    token = provider.seen[-1]
    assert (token["endpoint"], token["redirect_uri"]) == ("token", public)


async def test_logout_ends_the_session(stack: OidcStack) -> None:
    async with _browser(stack.url) as client:
        page = await client.get("/login/oidc")
        assert "alice (operator)" in page.text
        out = await client.post("/logout", data={"csrf_token": _csrf(page)})
        assert out.url.path == "/login"
        assert "user" not in _session_of(client)
        assert await _signed_out(client)
        assert (await client.get("/audit")).url.path == "/login"


async def test_the_provider_is_strict(stack: OidcStack) -> None:
    """The stub refuses what a provider must, so the tests above prove the console's side."""
    provider = stack.provider
    redirect_uri = provider.redirect_uris[0]
    base = {
        "client_id": provider.client_id,
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "scope": "openid",
        "state": "s1",
        "nonce": "n1",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGyJ8W8xoc",
        "code_challenge_method": "S256",
    }
    async with _browser(provider.issuer, follow=False) as client:
        for change, status in [
            ({"client_id": "other"}, 400),
            ({"redirect_uri": redirect_uri + "x"}, 400),
            ({"response_type": "token"}, 302),
            ({"nonce": ""}, 302),
            ({"code_challenge_method": "plain"}, 302),
        ]:
            answer = await client.get("/authorize", params={**base, **change})
            assert answer.status_code == status, change
            if status == 302:
                assert "error=" in answer.headers["location"], change
        approved = await client.get("/authorize", params=base)
        code = parse_qs(urlsplit(approved.headers["location"]).query)["code"][0]
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": "not-the-verifier-" + "x" * 30,
        }
        auth = (provider.client_id, provider.client_secret)
        wrong = await client.post("/token", data=form, auth=(provider.client_id, "nope"))
        assert wrong.status_code == 401
        assert (await client.post("/token", data=form, auth=auth)).json()["error"] == (
            "invalid_grant"
        )
        again = await client.post("/token", data=form, auth=auth)  # the code is gone: used once
        assert again.json()["error_description"] == "unknown, used or expired code"
