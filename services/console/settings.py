"""The console's settings (``REGBRIDGE_CONSOLE_…``): port, database, sessions, accounts, OIDC."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from shared.settings import ENV_PREFIX, CommonSettings, secret_from


class ConsoleSettings(CommonSettings):
    """Kafka and logging as every command reads them (``REGBRIDGE_KAFKA_…``, ``KAFKA_BOOTSTRAP_…``);
    the rest under ``REGBRIDGE_CONSOLE_``. Each worker's ledger comes from that worker's own
    settings (``REGBRIDGE_<WORKER>_DATABASE_URL``), as for `regbridge dlq replay`."""

    model_config = SettingsConfigDict(
        env_prefix=f"{ENV_PREFIX}CONSOLE_",
        env_nested_delimiter="__",
        extra="ignore",
        frozen=True,
    )

    host: str = Field(default="127.0.0.1", description="0.0.0.0 in a container")
    port: int = 8070
    database_url: SecretStr = Field(
        default=SecretStr("sqlite+aiosqlite:///./regbridge-console.db"),
        description="where regbridge_console_audit lives: the ledger's database in production",
    )
    database_url_file: str | None = None
    session_secret: SecretStr = Field(
        default=SecretStr(""), description="signs the session cookie; at least 32 characters"
    )
    session_secret_file: str | None = None
    session_max_age_s: int = Field(default=8 * 3600, ge=60)
    secure_cookies: bool = Field(
        default=True, description="Secure cookies (HTTPS only); false only for http://localhost"
    )
    # Local accounts, one per line or ';'-separated: NAME ROLE HASH (`regbridge console
    # hash-password` makes the line). For `make run` and break-glass; OIDC in production.
    accounts: SecretStr = SecretStr("")
    accounts_file: str | None = None
    # A worker's health base URL: '{worker}' and '{port}' (its default health port) filled in;
    # one worker's own in health_urls (JSON: {"gvr": "http://…"}).
    health_url_template: str = "http://127.0.0.1:{port}"
    health_urls: dict[str, str] = Field(default_factory=dict)
    dead_letters_shown: int = Field(default=500, ge=1, description="rows on the list page")
    # OpenID Connect (Authlib): the production login, on when issuer and client id are set
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr = SecretStr("")
    oidc_client_secret_file: str | None = None
    oidc_scope: str = "openid profile email"
    oidc_roles_claim: str = "roles"  # a claim holding a list (or one string) of roles
    oidc_operator_role: str = "regbridge-operator"
    oidc_viewer_role: str = "regbridge-viewer"
    oidc_name_claim: str = "preferred_username"
    oidc_redirect_uri: str | None = Field(
        default=None,
        description="the callback URL registered at the provider (https://<host>/login/oidc/"
        "callback) behind an ingress; unset: built from the request",
    )

    def audit_url(self) -> str:
        return secret_from(self.database_url, self.database_url_file).get_secret_value()

    def session_key(self) -> str:
        return secret_from(self.session_secret, self.session_secret_file).get_secret_value()

    def oidc_secret(self) -> str:
        return secret_from(self.oidc_client_secret, self.oidc_client_secret_file).get_secret_value()

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.oidc_issuer and self.oidc_client_id)

    def health_url(self, worker: str, port: int) -> str:
        """Where the worker's /status and /health/ready answer."""
        if worker in self.health_urls:
            return self.health_urls[worker]
        return self.health_url_template.format(worker=worker, port=port)
