"""Connection options shared by every Kafka client the project creates, and small readers."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import httpx
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import AbstractTokenProvider
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from shared.oauth2 import ClientCredentialsAuth

if TYPE_CHECKING:
    from shared.settings import KafkaSettings


def kafka_client_options(kafka: KafkaSettings) -> dict[str, Any]:
    """Connection options shared by every aiokafka client the project creates."""
    options: dict[str, Any] = {
        "bootstrap_servers": kafka.bootstrap_list,
        "client_id": kafka.client_id,
        "security_protocol": kafka.security_protocol,
        "request_timeout_ms": kafka.request_timeout_ms,
    }
    if kafka.sasl_mechanism == "OAUTHBEARER":
        options["sasl_mechanism"] = kafka.sasl_mechanism
        options["sasl_oauth_token_provider"] = oauth_token_provider(kafka)
    elif kafka.sasl_mechanism:
        options["sasl_mechanism"] = kafka.sasl_mechanism
        options["sasl_plain_username"] = kafka.sasl_username
        password = kafka.password()
        if password is not None:
            options["sasl_plain_password"] = password.get_secret_value()
    if kafka.security_protocol in ("SSL", "SASL_SSL"):
        from aiokafka.helpers import create_ssl_context

        options["ssl_context"] = create_ssl_context(
            cafile=kafka.ssl_cafile, certfile=kafka.ssl_certfile, keyfile=kafka.ssl_keyfile
        )
    return options


class OAuthTokenProvider(AbstractTokenProvider):  # type: ignore[misc]  # aiokafka is untyped
    """SASL/OAUTHBEARER tokens from an OAuth2 client-credentials endpoint (cached, refreshed
    early, one fetch at a time: `shared.oauth2.ClientCredentialsAuth`)."""

    def __init__(
        self, auth: ClientCredentialsAuth, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.auth = auth
        self._transport = transport

    async def token(self) -> str:
        async with httpx.AsyncClient(timeout=30, transport=self._transport) as client:
            return await self.auth.access_token(client)


_PROVIDERS: dict[tuple[str, str], OAuthTokenProvider] = {}


def oauth_token_provider(kafka: KafkaSettings) -> OAuthTokenProvider:
    """One provider (one cached token) per token endpoint and client id in this process."""
    if not (kafka.sasl_oauth_token_url and kafka.sasl_oauth_client_id):
        raise ValueError(
            "SASL mechanism OAUTHBEARER needs REGBRIDGE_KAFKA_SASL_OAUTH_TOKEN_URL and "
            "REGBRIDGE_KAFKA_SASL_OAUTH_CLIENT_ID (and the client secret or its file)"
        )
    from shared.settings import secret_from  # shared.settings imports this module's users

    key = (kafka.sasl_oauth_token_url, kafka.sasl_oauth_client_id)
    if key not in _PROVIDERS:
        secret = secret_from(kafka.sasl_oauth_client_secret, kafka.sasl_oauth_client_secret_file)
        auth = ClientCredentialsAuth(key[0], key[1], secret, scope=kafka.sasl_oauth_scope)
        _PROVIDERS[key] = OAuthTokenProvider(auth)
    return _PROVIDERS[key]


def standalone_consumer(kafka: KafkaSettings) -> AIOKafkaConsumer:
    """A standalone consumer: no group, never commits, reads only what is committed."""
    return AIOKafkaConsumer(
        **kafka_client_options(kafka),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )


def admin_client(kafka: KafkaSettings) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**kafka_client_options(kafka))


async def cluster_id(kafka: KafkaSettings) -> str:
    """The id of the Kafka cluster the settings reach (what a ledger is bound to)."""
    admin = admin_client(kafka)
    await admin.start()
    try:
        found = (await admin.describe_cluster()).get("cluster_id")
    finally:
        await admin.close()
    if not found:
        raise KafkaError("the cluster did not say its id (a broker older than Kafka 0.10.1?)")
    return str(found)


def kafka_out_of_reach(error: BaseException) -> bool:
    """True when `error` says the brokers cannot be reached now (wait), not a bug (raise)."""
    return isinstance(error, KafkaError | OSError | TimeoutError)


async def existing_partitions(
    admin: AIOKafkaAdminClient, topics: Sequence[str]
) -> dict[str, list[TopicPartition]]:
    """The partitions of each topic that exists (asking never creates a topic)."""
    present = set(await admin.list_topics()) & set(topics)  # describing a missing topic may
    described = await admin.describe_topics(sorted(present)) if present else []  # create it
    return {
        d["topic"]: sorted(TopicPartition(d["topic"], p["partition"]) for p in d["partitions"])
        for d in described
        if d["error_code"] == 0
    }


async def read_to_end(
    kafka: KafkaSettings,
    topics: Sequence[str],
    on_record: Callable[[ConsumerRecord[bytes, bytes]], None],
    *,
    start: Mapping[TopicPartition, int] | None = None,
    on_end: Callable[[dict[TopicPartition, int]], None] | None = None,
) -> dict[TopicPartition, int]:
    """Read every partition of `topics` from its start (or the offset `start` gives it) to the
    end offsets seen now; return those end offsets. Topics that do not exist are read as empty.
    `on_end` is given the end offsets as soon as they are known, before anything is read."""
    admin = admin_client(kafka)
    await admin.start()
    try:
        partitions = [
            tp for tps in (await existing_partitions(admin, topics)).values() for tp in tps
        ]
    finally:
        await admin.close()
    if not partitions:
        if on_end is not None:
            on_end({})
        return {}
    consumer = standalone_consumer(kafka)
    await consumer.start()
    try:
        consumer.assign(partitions)
        end = await consumer.end_offsets(partitions)
        if on_end is not None:
            on_end(dict(end))
        await consumer.seek_to_beginning(*partitions)
        for tp, offset in (start or {}).items():
            if tp in end:
                consumer.seek(tp, offset)
        todo = {tp for tp in partitions if end[tp] > (start or {}).get(tp, 0)}
        while todo:
            batch = await consumer.getmany(*todo, timeout_ms=1000, max_records=5000)
            for tp, records in batch.items():
                for record in records:
                    if record.offset < end[tp]:
                        on_record(record)
            for tp in list(todo):
                if await consumer.position(tp) >= end[tp]:
                    todo.discard(tp)
    finally:
        await consumer.stop()
    return dict(end)
