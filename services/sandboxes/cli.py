"""`regbridge sandbox …`: run a sandbox on its own until Ctrl-C."""

from __future__ import annotations

import importlib.util
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer

from services.cli.support import wait_for_interrupt
from shared.durations import parse_delay

sandbox_app = typer.Typer(help="Local stand-ins for the registers and HSA.", no_args_is_help=True)


@sandbox_app.callback()
def _needs_the_sandbox_extra() -> None:
    """The sandboxes run on FastAPI and trustme, installed with regbridge[sandbox] only."""
    missing = [name for name in ("fastapi", "trustme") if importlib.util.find_spec(name) is None]
    if missing:
        typer.secho(
            f"the sandboxes need {', '.join(missing)}: pip install 'regbridge[sandbox]'",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(2)


# The faults a register sandbox (GVR, NVR) starts with; /admin/faults changes them later.
_LatencyMs = Annotated[float, typer.Option(help="Delay before every answer.")]
_LatencyJitterMs = Annotated[float, typer.Option(help="Plus 0 … this many ms.")]
_ErrorRate = Annotated[float, typer.Option(help="Share of calls answered 500.")]
_ThrottleRate = Annotated[float, typer.Option(help="Share of calls answered 429.")]
_RetryAfterS = Annotated[int, typer.Option(help="Retry-After of a 429, seconds.")]
_DropRate = Annotated[float, typer.Option(help="Share of connections dropped.")]
_Maintenance = Annotated[bool, typer.Option(help="Start in maintenance (503).")]


@sandbox_app.command("hsa")
def sandbox_hsa(
    units: Annotated[
        int, typer.Option(help="Units in the generated directory (≤ 1,000,000).")
    ] = 2000,
    seed: Annotated[int, typer.Option(help="Same seed, same directory.")] = 1,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on; 0 picks a free one.")] = 8090,
    kafka_bootstrap: Annotated[
        str | None,
        typer.Option(help="Kafka bootstrap address: admin changes are then notified."),
    ] = None,
    topic: Annotated[
        str,
        typer.Option(
            envvar="REGBRIDGE_CATALOG_INPUT_TOPIC",
            help="Notification topic (the catalog's input topic).",
        ),
    ] = "catalog.hsa-notifications.v1",
    export_lead: Annotated[
        str,
        typer.Option(help="How long before each slot the export is cut ('90m'; '0': always now)."),
    ] = "90m",
    export_slots: Annotated[
        str, typer.Option(help="The import slots the export is cut for (local times).")
    ] = "11:30,15:30,22:30",
) -> None:
    """Serve a generated HSA directory: /units/{hsa_id}, /export, /admin/…, /docs."""
    from services.sandboxes.hsa import HsaSandbox
    from shared.schedule import parse_times

    lead = timedelta(0) if export_lead == "0" else timedelta(seconds=parse_delay(export_lead))
    sandbox = HsaSandbox(
        units,
        seed,
        kafka_bootstrap=kafka_bootstrap,
        topic=topic,
        host=host,
        port=port,
        export_lead=lead,
        export_slots=parse_times(export_slots.split(",")),
    )
    with sandbox:
        notified = f", notifications to {topic} on {kafka_bootstrap}" if kafka_bootstrap else ""
        typer.echo(f"HSA sandbox: {units} units (seed {seed}) at {sandbox.base_url}{notified}")
        if units:
            example = f"{sandbox.base_url}/units/{sandbox.directory.hsa_id_of(0)}"
            typer.echo(f"  API: {sandbox.base_url}/docs  ·  a unit: {example}")
        typer.echo("Press Ctrl-C to stop.")
        wait_for_interrupt()


@sandbox_app.command("kiv")
def sandbox_kiv(
    hsa_units: Annotated[
        int, typer.Option(help="Units of the HSA directory; KIV holds its Västra Götaland ones.")
    ] = 2000,
    seed: Annotated[int, typer.Option(help="Same seed as the HSA sandbox: same units.")] = 1,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on; 0 picks a free one.")] = 8094,
) -> None:
    """Serve KIV (Katalog i Väst): /units/{hsa_id}, /export, /admin/…, /docs."""
    from services.sandboxes.kiv import KivSandbox

    sandbox = KivSandbox(hsa_units, seed, host=host, port=port)
    with sandbox:
        count = sandbox.directory.count
        typer.echo(
            f"KIV sandbox: {count} units (of {hsa_units} HSA units, seed {seed}) "
            f"at {sandbox.base_url}"
        )
        example = f"  ·  a unit: {sandbox.base_url}/units/{sandbox.directory.hsa_id_of(0)}"
        typer.echo(f"  API: {sandbox.base_url}/docs{example if count else ''}")
        typer.echo("Press Ctrl-C to stop.")
        wait_for_interrupt()


@sandbox_app.command("codeserver")
def sandbox_codeserver(
    hsa_units: Annotated[
        int, typer.Option(help="Units of the HSA directory whose kombikas the file maps.")
    ] = 2000,
    seed: Annotated[int, typer.Option(help="Same seed as the HSA sandbox: same kombikas.")] = 1,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on; 0 picks a free one.")] = 8095,
) -> None:
    """Serve Region Stockholm's code server: /mek.xml, /admin/…, /docs."""
    from services.sandboxes.codeserver import CodeServerSandbox

    sandbox = CodeServerSandbox(hsa_units, seed, host=host, port=port)
    with sandbox:
        rows = len(sandbox.file.rows())
        typer.echo(
            f"Code-server sandbox: {rows} mappings (of {hsa_units} HSA units, seed {seed}) "
            f"at {sandbox.base_url}"
        )
        typer.echo(f"  API: {sandbox.base_url}/docs  ·  the MEK file: {sandbox.mek_url}")
        typer.echo("Press Ctrl-C to stop.")
        wait_for_interrupt()


@sandbox_app.command("gvr")
def sandbox_gvr(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on; 0 picks a free one.")] = 8443,
    units: Annotated[
        int, typer.Option(help="Units of the HSA directory whose kombikas GVR knows.")
    ] = 2000,
    seed: Annotated[int, typer.Option(help="Same seed as the HSA sandbox: same kombikas.")] = 1,
    certs_dir: Annotated[
        Path,
        typer.Option(
            help="Where ca.pem, server.pem/.key, client.pem/.key and client.p12 (+ .password) "
            "are kept; reused when complete."
        ),
    ] = Path("gvr-certs"),
    new_certs: Annotated[
        bool, typer.Option(help="Make a new CA and certificates even if some exist.")
    ] = False,
    cert_host: Annotated[
        list[str] | None,
        typer.Option(
            help="Name in new server certificates (repeat; default 127.0.0.1, localhost)."
        ),
    ] = None,
    tls13: Annotated[
        bool,
        typer.Option(
            help="Allow TLS 1.3 (a refused client certificate then fails after the "
            "handshake, not in it)."
        ),
    ] = False,
    latency_ms: _LatencyMs = 0,
    latency_jitter_ms: _LatencyJitterMs = 0,
    error_rate: _ErrorRate = 0,
    throttle_rate: _ThrottleRate = 0,
    retry_after_s: _RetryAfterS = 1,
    drop_rate: _DropRate = 0,
    maintenance: _Maintenance = False,
) -> None:
    """Serve GVR over mutual TLS: /vardhandelse/…, /tillganglighet, /admin/…, /docs."""
    import ssl

    from services.sandboxes.gvr import Faults, GvrSandbox
    from services.sandboxes.gvr.certs import SERVER_HOSTS

    faults = Faults(
        latency_ms=latency_ms,
        latency_jitter_ms=latency_jitter_ms,
        error_rate=error_rate,
        throttle_rate=throttle_rate,
        retry_after_s=retry_after_s,
        drop_rate=drop_rate,
        maintenance=maintenance,
    )
    sandbox = GvrSandbox(
        units,
        seed,
        certs_dir=certs_dir,
        new_certs=new_certs,
        cert_hosts=tuple(cert_host or SERVER_HOSTS),
        host=host,
        port=port,
        faults=faults,
        tls_maximum_version=None if tls13 else ssl.TLSVersion.TLSv1_2,
    )
    with sandbox:
        certs = sandbox.certs
        typer.echo(
            f"GVR sandbox at {sandbox.base_url} (mutual TLS; {len(sandbox.registry)} kombikas "
            f"from {units} HSA units, seed {seed})"
        )
        typer.echo(f"  CA {certs.ca_cert}  ·  client {certs.client_cert} + {certs.client_key}")
        typer.echo(f"  PKCS#12 {certs.client_p12} (password in {certs.client_p12_password})")
        typer.echo(
            f"  API: {sandbox.base_url}/docs  ·  OpenAPI 3.0: {sandbox.base_url}/openapi.json"
        )
        typer.echo("Press Ctrl-C to stop.")
        wait_for_interrupt()


@sandbox_app.command("nvr")
def sandbox_nvr(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on; 0 picks a free one.")] = 8092,
    units: Annotated[
        int, typer.Option(help="Units of the HSA directory whose care units NVR knows.")
    ] = 2000,
    seed: Annotated[int, typer.Option(help="Same seed as the HSA sandbox: same care units.")] = 1,
    client_id: Annotated[
        str | None, typer.Option(help="OAuth2 client id the register knows [default: regbridge].")
    ] = None,
    client_secret: Annotated[
        str | None,
        typer.Option(
            envvar="REGBRIDGE_NVR_SANDBOX_CLIENT_SECRET",
            help="Its secret (default: the sandbox's well-known test secret); never printed.",
            show_default=False,
        ),
    ] = None,
    key_expires_on: Annotated[
        str | None, typer.Option(help="Last day the client's key works, YYYY-MM-DD.")
    ] = None,
    allowed_caregiver: Annotated[
        list[str] | None,
        typer.Option(help="Organisation number the client may report for (repeat; default any)."),
    ] = None,
    token_lifetime_s: Annotated[float, typer.Option(help="Lifetime of a bearer token.")] = 300,
    latency_ms: _LatencyMs = 0,
    latency_jitter_ms: _LatencyJitterMs = 0,
    error_rate: _ErrorRate = 0,
    throttle_rate: _ThrottleRate = 0,
    retry_after_s: _RetryAfterS = 1,
    drop_rate: _DropRate = 0,
    maintenance: _Maintenance = False,
) -> None:
    """Serve NVR over HTTP: /oauth2/token, /fhir, /vaccines, /admin/…, /docs."""
    from datetime import date

    from services.sandboxes.nvr import (
        DEFAULT_CLIENT_ID,
        DEFAULT_CLIENT_SECRET,
        Faults,
        NvrSandbox,
        OAuthClient,
    )

    client_id = client_id or DEFAULT_CLIENT_ID
    client = OAuthClient(
        client_id,
        client_secret or DEFAULT_CLIENT_SECRET,
        key_expires_on=date.fromisoformat(key_expires_on) if key_expires_on else None,
        allowed_caregivers=frozenset(allowed_caregiver) if allowed_caregiver else None,
    )
    faults = Faults(
        latency_ms=latency_ms,
        latency_jitter_ms=latency_jitter_ms,
        error_rate=error_rate,
        throttle_rate=throttle_rate,
        retry_after_s=retry_after_s,
        drop_rate=drop_rate,
        maintenance=maintenance,
    )
    sandbox = NvrSandbox(
        units,
        seed,
        clients=[client],
        token_lifetime_s=token_lifetime_s,
        host=host,
        port=port,
        faults=faults,
    )
    with sandbox:
        typer.echo(
            f"NVR sandbox at {sandbox.base_url} (care units of {units} HSA units, seed {seed}; "
            f"client {client_id}, tokens live {token_lifetime_s:g} s)"
        )
        typer.echo(
            f"  token: {sandbox.token_url}  ·  FHIR: {sandbox.fhir_url}  ·  API: "
            f"{sandbox.base_url}/docs"
        )
        typer.echo("Press Ctrl-C to stop.")
        wait_for_interrupt()


@sandbox_app.command("vgpv")
def sandbox_vgpv(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on; 0 picks a free one.")] = 8096,
    hsa_units: Annotated[
        int, typer.Option(help="Units of the HSA directory; VGPV knows KIV's Vårdval ones.")
    ] = 2000,
    seed: Annotated[int, typer.Option(help="Same seed as the HSA and KIV sandboxes.")] = 1,
    certs_dir: Annotated[
        Path,
        typer.Option(help="Where ca.pem, server.pem/.key and client.pem/.key are kept; reused."),
    ] = Path("vgpv-certs"),
    new_certs: Annotated[
        bool, typer.Option(help="Make a new CA and certificates even if some exist.")
    ] = False,
    cert_host: Annotated[
        list[str] | None,
        typer.Option(
            help="Name in new server certificates (repeat; default 127.0.0.1, localhost)."
        ),
    ] = None,
    now: Annotated[
        str | None,
        typer.Option(
            help="The register's time at start, ISO 8601 with a zone (it ticks on from there): "
            "stand inside a window, or past its close."
        ),
    ] = None,
    latency_ms: _LatencyMs = 0,
    latency_jitter_ms: _LatencyJitterMs = 0,
    error_rate: _ErrorRate = 0,
    throttle_rate: _ThrottleRate = 0,
    retry_after_s: _RetryAfterS = 1,
    drop_rate: _DropRate = 0,
    maintenance: _Maintenance = False,
) -> None:
    """Serve VGPV's file upload over mutual TLS: /filer/{name}, /innehav, /admin/…, /docs."""
    from datetime import datetime

    from services.sandboxes.faults import Faults
    from services.sandboxes.gvr.certs import SERVER_HOSTS
    from services.sandboxes.vgpv import VgpvSandbox

    start = datetime.fromisoformat(now) if now else None
    if start is not None and start.tzinfo is None:
        raise typer.BadParameter("--now needs a zone offset (…+01:00 or …Z)")
    faults = Faults(
        latency_ms=latency_ms,
        latency_jitter_ms=latency_jitter_ms,
        error_rate=error_rate,
        throttle_rate=throttle_rate,
        retry_after_s=retry_after_s,
        drop_rate=drop_rate,
        maintenance=maintenance,
    )
    sandbox = VgpvSandbox(
        hsa_units,
        seed,
        certs_dir=certs_dir,
        new_certs=new_certs,
        cert_hosts=tuple(cert_host or SERVER_HOSTS),
        host=host,
        port=port,
        faults=faults,
    )
    with sandbox:
        if start is not None:
            sandbox.set_clock(start)
        certs = sandbox.certs
        typer.echo(
            f"VGPV sandbox at {sandbox.base_url} (mutual TLS; KIV's units of {hsa_units} HSA "
            f"units, seed {seed}; its clock {sandbox.state.clock().isoformat(timespec='seconds')})"
        )
        typer.echo(f"  CA {certs.ca_cert}  ·  client {certs.client_cert} + {certs.client_key}")
        typer.echo(f"  API: {sandbox.base_url}/docs  ·  received: {sandbox.base_url}/filer")
        typer.echo("Press Ctrl-C to stop.")
        wait_for_interrupt()


@sandbox_app.command("cvr")
def sandbox_cvr(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on; 0 picks a free one.")] = 8222,
    certs_dir: Annotated[
        Path,
        typer.Option(
            help="Where host_key(.pub), client_key(.pub) and known_hosts are kept; reused when "
            "complete."
        ),
    ] = Path("cvr-certs"),
    new_keys: Annotated[
        bool, typer.Option(help="Make a new host key and client key even if some exist.")
    ] = False,
    key_host: Annotated[
        list[str] | None,
        typer.Option(help="Host a new known_hosts pins (repeat; default 127.0.0.1, localhost)."),
    ] = None,
    root: Annotated[
        Path | None,
        typer.Option(
            help="The SFTP root (in/, ut/); its files are read back at start. Default: a "
            "temporary directory, removed at stop."
        ),
    ] = None,
    username: Annotated[str, typer.Option(help="The one account that logs in.")] = "regbridge",
    refuse_login: Annotated[bool, typer.Option(help="Refuse every login.")] = False,
    drop_after_bytes: Annotated[
        int | None, typer.Option(help="Cut an upload's connection after this many bytes.")
    ] = None,
    drop_uploads: Annotated[
        int | None, typer.Option(help="… for this many uploads (default: every one).")
    ] = None,
    write_delay_ms: Annotated[float, typer.Option(help="Delay every write (a slow disk).")] = 0,
    receipt_delay_s: Annotated[
        float, typer.Option(help="Read each file this long after its rename (late receipts).")
    ] = 0,
) -> None:
    """Serve CVR's SFTP drop box: in/<name>.part renamed to in/<name>, receipts in ut/."""
    from services.sandboxes.cvr import CvrFaults, CvrSandbox
    from services.sandboxes.cvr.keys import SERVER_HOSTS

    faults = CvrFaults(
        refuse_login=refuse_login,
        drop_after_bytes=drop_after_bytes,
        drop_uploads=drop_uploads,
        write_delay_ms=write_delay_ms,
        receipt_delay_s=receipt_delay_s,
    )
    sandbox = CvrSandbox(
        certs_dir=certs_dir,
        new_keys=new_keys,
        key_hosts=tuple(key_host or SERVER_HOSTS),
        root=root,
        host=host,
        port=port,
        username=username,
        faults=faults,
    )
    with sandbox:
        keys = sandbox.keys
        held = len(sandbox.deliveries())
        typer.echo(
            f"CVR sandbox: SFTP at {sandbox.address} (user {sandbox.username}, its key only); "
            f"root {sandbox.root} ({held} files read back)"
        )
        typer.echo(f"  client key {keys.client_key}  ·  host key pinned in {keys.known_hosts}")
        typer.echo(
            f"  worker: REGBRIDGE_CVR_SFTP_PORT={sandbox.port} "
            f"REGBRIDGE_CVR_SFTP_KEY_FILE={keys.client_key} "
            f"REGBRIDGE_CVR_SFTP_KNOWN_HOSTS={keys.known_hosts}"
        )
        if faults != CvrFaults():
            typer.echo(f"  faults: {faults}")
        typer.echo("Press Ctrl-C to stop.")
        wait_for_interrupt()
