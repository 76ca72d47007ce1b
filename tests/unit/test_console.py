"""The console's security in-process (Starlette's TestClient): login, roles, CSRF, masking."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.routing import Route
from starlette.testclient import TestClient

from services.console.accounts import (
    AccountsError,
    Role,
    authenticate,
    hash_password,
    parse_accounts,
    verify_password,
)
from services.console.app import create_app
from services.console.masking import Masker, masked_text
from services.console.oidc import role_of
from services.console.settings import ConsoleSettings
from shared.identifiers import mask_personal_ids

SECRET = "s" * 40
ACCOUNTS = "\n".join(
    [
        f"olle operator {hash_password('olles-password')}",
        f"vera viewer {hash_password('veras-password')}",
    ]
)
POSTS = ["/replay/plan", "/replay/run", "/dead-letters/gvr/0/1/reveal"]


def _settings(tmp_path: Path, **more: object) -> ConsoleSettings:
    values: dict[str, object] = {
        "session_secret": SECRET,
        "accounts": ACCOUNTS,
        "secure_cookies": False,  # TestClient speaks http://testserver
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'console.db'}",
    }
    return ConsoleSettings(**(values | more))  # type: ignore[arg-type]


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = _settings(tmp_path)
    accounts = parse_accounts(settings.accounts.get_secret_value())
    with TestClient(create_app(settings, {}, accounts), follow_redirects=False) as client:
        yield client


def _csrf(client: TestClient, path: str = "/login") -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert found is not None
    return found.group(1)


def _login(client: TestClient, name: str, password: str) -> str:
    token = _csrf(client)
    answer = client.post("/login", data={"name": name, "password": password, "csrf_token": token})
    assert answer.status_code == 303, answer.text
    return _csrf(client, "/")  # a new session: a new token


# --- accounts ------------------------------------------------------------------------------------


def test_a_password_hash_verifies_only_its_password() -> None:
    stored = hash_password("correct horse")
    assert stored.startswith("scrypt$16384$8$1$")
    assert verify_password("correct horse", stored)
    assert not verify_password("correct horsE", stored)
    assert not verify_password("x", "not-a-hash")
    assert hash_password("same") != hash_password("same")  # salted


def test_accounts_lines_and_their_mistakes() -> None:
    accounts = parse_accounts(ACCOUNTS + "\n# a comment\n")
    assert {a.name: a.role for a in accounts.values()} == {
        "olle": Role.OPERATOR,
        "vera": Role.VIEWER,
    }
    assert authenticate(accounts, "olle", "olles-password") == accounts["olle"]
    assert authenticate(accounts, "olle", "wrong") is None
    assert authenticate(accounts, "nobody", "olles-password") is None
    with pytest.raises(AccountsError, match="role must be"):
        parse_accounts(f"x admin {hash_password('p')}")
    with pytest.raises(AccountsError, match="NAME ROLE HASH"):
        parse_accounts("x viewer")


def test_the_console_refuses_a_short_session_secret_and_no_way_in(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 32"):
        create_app(_settings(tmp_path, session_secret="short"), {}, {})
    with pytest.raises(ValueError, match="no way to sign in"):
        create_app(_settings(tmp_path), {}, {})


# --- login and sessions --------------------------------------------------------------------------


def test_pages_want_a_login_first(client: TestClient) -> None:
    for path in ["/", "/dead-letters", "/trace", "/audit", "/dead-letters/gvr/0/1"]:
        answer = client.get(path)
        assert (answer.status_code, answer.headers["location"]) == (303, "/login"), path


def test_login_with_a_wrong_password_is_refused(client: TestClient) -> None:
    token = _csrf(client)
    answer = client.post("/login", data={"name": "vera", "password": "x", "csrf_token": token})
    assert answer.status_code == 401
    assert "Wrong name or password" in answer.text
    assert client.get("/").status_code == 303


def test_login_then_logout(client: TestClient) -> None:
    token = _login(client, "vera", "veras-password")
    page = client.get("/")
    assert page.status_code == 200
    assert "vera (viewer)" in page.text
    assert client.post("/logout", data={"csrf_token": token}).status_code == 303
    assert client.get("/").status_code == 303


def test_the_session_cookie_is_secure_httponly_and_samesite(tmp_path: Path) -> None:
    settings = _settings(tmp_path, secure_cookies=True)
    accounts = parse_accounts(ACCOUNTS)
    with TestClient(create_app(settings, {}, accounts), base_url="https://testserver") as client:
        cookie = client.get("/login").headers["set-cookie"].lower()
    assert "secure" in cookie
    assert "httponly" in cookie
    assert "samesite=lax" in cookie


def test_every_answer_carries_the_security_headers(client: TestClient) -> None:
    headers = client.get("/login").headers
    assert headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["cache-control"] == "no-store"


# --- CSRF ----------------------------------------------------------------------------------------


def test_a_login_without_its_csrf_token_is_refused(client: TestClient) -> None:
    client.get("/login")
    answer = client.post("/login", data={"name": "olle", "password": "olles-password"})
    assert answer.status_code == 403
    assert client.get("/").status_code == 303  # not signed in


def test_every_post_without_its_csrf_token_is_refused(client: TestClient) -> None:
    token = _login(client, "olle", "olles-password")
    concrete = {"{worker}": "gvr", "{partition:int}": "0", "{offset:int}": "1"}
    posts = [
        re.sub(r"\{[^}]+\}", lambda m: concrete[m.group(0)], r.path)
        for r in client.app.routes  # type: ignore[attr-defined]
        if isinstance(r, Route) and "POST" in (r.methods or ())
    ]
    assert set(POSTS) | {"/login", "/logout"} <= set(posts)
    for path in posts:
        form = {"position": "gvr:0:1", "reason": "test", "number": "1"}
        assert client.post(path, data=form).status_code == 403, path
        assert client.post(path, data=form | {"csrf_token": "forged"}).status_code == 403, path
    assert "olle (operator)" in client.get("/").text  # still signed in: nothing happened
    assert token


# --- roles ---------------------------------------------------------------------------------------


def test_a_viewer_may_not_replay_or_reveal_even_with_a_valid_csrf_token(
    client: TestClient,
) -> None:
    token = _login(client, "vera", "veras-password")
    for path in POSTS:
        form = {"position": "gvr:0:1", "reason": "curious", "number": "1", "csrf_token": token}
        answer = client.post(path, data=form)
        assert answer.status_code == 403, path
        assert "only an operator" in answer.text


def test_an_operator_passes_the_checks(client: TestClient) -> None:
    token = _login(client, "olle", "olles-password")
    # past CSRF and role: the request itself is then judged (nothing selected; no such worker)
    assert client.post("/replay/plan", data={"csrf_token": token}).status_code == 400
    answer = client.post(
        "/dead-letters/gvr/0/1/reveal", data={"csrf_token": token, "reason": "x", "number": "1"}
    )
    assert answer.status_code == 404


def test_a_post_without_a_session_is_refused(client: TestClient) -> None:
    for path in POSTS:
        assert client.post(path, data={"csrf_token": "x"}).status_code == 403


def test_oidc_roles_from_the_claims(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    assert role_of({"roles": ["regbridge-operator", "x"]}, settings) is Role.OPERATOR
    assert role_of({"roles": "regbridge-viewer"}, settings) is Role.VIEWER
    assert role_of({"roles": ["other"]}, settings) is None
    assert role_of({}, settings) is None


# --- masking -------------------------------------------------------------------------------------

TEXT = (
    'patient 191212121212, kontakt 19121212-1212; org 5564012345; ts 20260105093000 "121212-1212"'
)


def test_masking_is_the_logs_masking_with_each_number_counted() -> None:
    masker = Masker()
    segments = masker(TEXT)
    assert masked_text(segments) == mask_personal_ids(TEXT)
    assert "1212121212" not in masked_text(segments)
    assert [s.number for s in segments if s.number] == [1, 2, 3]
    assert masker.count == 3
    again = Masker()
    again("19121212-1212 first")
    assert [s.number for s in again(TEXT) if s.number] == [2, 3, 4]  # numbered through a page


def test_a_reveal_shows_one_number_only() -> None:
    masker = Masker(reveal=2)
    text = masked_text(masker(TEXT))
    assert masker.revealed_value == "19121212-1212"
    assert "19121212-1212" in text
    assert "191212121212" not in text
    assert "121212-1212" not in text.replace("19121212-1212", "")
