"""The catalog sync's settings (``REGBRIDGE_CATALOG_…``): HSA, the vaccine list, the schedule."""

from __future__ import annotations

import socket

from pydantic import Field, SecretStr

from shared.settings import RegbridgeSettings, secret_from, worker_config


class CatalogSettings(RegbridgeSettings):
    """Catalog sync (``REGBRIDGE_CATALOG_…``)."""

    model_config = worker_config("catalog")

    health_port: int = 8083
    input_topic: str = Field(
        default="catalog.hsa-notifications.v1", description="HSA unit notifications"
    )
    hsa_url: str = Field(default="http://127.0.0.1:8090", description="HSA (or its sandbox)")
    kiv_url: str | None = Field(
        default=None,
        description="KIV, Västra Götaland's directory (or its sandbox): merged with HSA's units",
    )
    vaccines_url: str = Field(
        default="http://127.0.0.1:8092", description="NVR API base for the vaccine list"
    )
    vaccines_path: str = "/vaccines"
    vaccines_npl_id_system: str = Field(
        default="http://electronichealth.se/identifier/nplid",
        description="the NPL-id coding system of the list's Medications (NVR's npl_id_system)",
    )
    vaccines_atc_system: str = Field(
        default="http://www.whocc.no/atc", description="the ATC coding system of the list"
    )
    nvr_token_path: str = "/oauth2/token"  # noqa: S105 - a path, not a secret
    nvr_client_id: str | None = Field(
        default=None, description="OAuth2 client id for NVR's vaccine list; None: no token"
    )
    nvr_client_secret: SecretStr = SecretStr("")
    nvr_client_secret_file: str | None = Field(
        default=None, description="file holding the client secret, instead of nvr_client_secret"
    )

    codeserver_url: str | None = Field(
        default=None,
        description="Region Stockholm's code server (or its sandbox): kombika ↔ HSA-id; "
        "None: HSA's kombika attribute answers alone",
    )
    codeserver_path: str = Field(default="/mek.xml", description="the MEK file on the server")
    kombika_import_times: list[str] = Field(
        default_factory=lambda: [f"{hour:02d}:15" for hour in range(24)],
        description="local times the code server's file is read, every day",
    )

    import_times: list[str] = Field(
        default_factory=lambda: ["11:30", "15:30", "22:30"],
        description="local times of the full HSA import, every day",
    )
    timezone: str = "Europe/Stockholm"
    vaccines_every: str = Field(default="6h", description="how often the vaccine list is read")
    max_removal_share: float = Field(
        default=0.05, gt=0, le=1, description="withhold removals above this share of the catalog"
    )
    instance_id: str = Field(
        default_factory=socket.gethostname, description="who claims a scheduled import slot"
    )

    def nvr_secret(self) -> SecretStr:
        return secret_from(self.nvr_client_secret, self.nvr_client_secret_file)
