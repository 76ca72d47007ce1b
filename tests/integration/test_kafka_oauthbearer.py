"""SASL/OAUTHBEARER against a real broker: tokens from an OAuth2 client-credentials endpoint.

The broker (deploy/kafka/localkafka.py --oauthbearer) validates unsecured JWTs, as Kafka does by
default when no validator is configured; the token endpoint here issues them. What is proven is
regbridge's side: the settings, the token provider (fetched once, cached, sent on connect) and a
clear failure for refused credentials.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from fastapi import FastAPI, Request, Response
from pydantic import SecretStr

from services.devstack.infra import LOCALKAFKA
from services.sandboxes.server import ServerThread
from shared.kafka import kafka_client_options, oauth_token_provider
from shared.oauth2 import TokenRequestError
from shared.settings import KafkaSettings
from tests.conftest import IN_CI

CLIENT_ID, SECRET = "regbridge-kafka", "s3cret"


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def token_app(issued: list[str]) -> FastAPI:
    app = FastAPI()

    @app.post("/token")
    async def token(request: Request, response: Response) -> dict[str, object]:
        form = parse_qs((await request.body()).decode())
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{SECRET}".encode()).decode()
        authorization = request.headers.get("authorization")
        if form.get("grant_type") != ["client_credentials"] or authorization != expected:
            response.status_code = 401
            return {"error": "invalid_client"}
        now = int(time.time())
        jwt = _b64({"alg": "none"}) + "." + _b64({"sub": CLIENT_ID, "iat": now, "exp": now + 600})
        issued.append(jwt + ".")
        return {"access_token": jwt + ".", "token_type": "Bearer", "expires_in": 600}

    return app


@pytest.fixture(scope="module")
def oauth_broker() -> Iterator[str]:
    """A broker of its own with a SASL/OAUTHBEARER listener: its address."""
    if shutil.which("java") is None:
        if IN_CI:
            pytest.fail("java missing: CI must run the OAUTHBEARER test")
        pytest.skip("java missing: no local broker")
    state = Path(tempfile.mkdtemp(prefix="regbridge-kafka-oauth-"))
    started = subprocess.run(
        [sys.executable, str(LOCALKAFKA), "start", "--state-dir", str(state), "--oauthbearer"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert started.returncode == 0, started.stderr
    try:
        yield str(json.loads(started.stdout)["sasl_bootstrap_servers"])
    finally:
        subprocess.run(
            [sys.executable, str(LOCALKAFKA), "stop", "--state-dir", str(state)],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(state, ignore_errors=True)


def settings_for(bootstrap: str, token_url: str, secret: str) -> KafkaSettings:
    return KafkaSettings(
        bootstrap_servers=bootstrap,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="OAUTHBEARER",
        sasl_oauth_token_url=token_url,
        sasl_oauth_client_id=CLIENT_ID,
        sasl_oauth_client_secret=SecretStr(secret),
    )


async def test_a_worker_produces_and_consumes_with_oauthbearer_tokens(oauth_broker: str) -> None:
    # Given a broker that takes OAUTHBEARER and a client-credentials token endpoint
    issued: list[str] = []
    with ServerThread(token_app(issued), name="kafka-oauth") as server:
        kafka = settings_for(oauth_broker, f"{server.base_url}/token", SECRET)
        options = kafka_client_options(kafka)
        # When a producer and a consumer connect with regbridge's settings
        producer = AIOKafkaProducer(**options, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait("oauth.test", b"hello", key=b"k")
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            "oauth.test", **options, auto_offset_reset="earliest", enable_auto_commit=False
        )
        await consumer.start()
        try:
            record = await asyncio.wait_for(consumer.getone(), 30)
        finally:
            await consumer.stop()
    # Then the message went through, on one token shared by every client of the process
    assert record.value == b"hello"
    assert len(issued) == 1
    assert options["sasl_oauth_token_provider"] is oauth_token_provider(kafka)


async def test_refused_kafka_credentials_fail_with_the_token_endpoints_answer() -> None:
    # Given a wrong client secret
    with ServerThread(token_app([]), name="kafka-oauth") as server:
        kafka = settings_for("127.0.0.1:9", f"{server.base_url}/token", "wrong")
        provider = oauth_token_provider(kafka)
        # When a client asks for a token, Then the refusal is clear and holds no secret
        with pytest.raises(TokenRequestError) as refused:
            await provider.token()
    assert refused.value.credentials_refused
    assert "wrong" not in str(refused.value)
    assert "invalid_client" in str(refused.value)


def test_oauthbearer_without_a_token_endpoint_is_a_clear_configuration_error() -> None:
    kafka = KafkaSettings(security_protocol="SASL_SSL", sasl_mechanism="OAUTHBEARER")
    with pytest.raises(ValueError, match="SASL_OAUTH_TOKEN_URL"):
        kafka_client_options(kafka)
