#!/usr/bin/env python3
"""Start and stop a single-node Apache Kafka (KRaft) broker from Maven Central jars, no Docker.

Usage:
    python deploy/kafka/localkafka.py start --state-dir DIR   # prints the bootstrap address
    python deploy/kafka/localkafka.py stop  --state-dir DIR   # its data stays in DIR
    python deploy/kafka/localkafka.py start --state-dir DIR   # the same broker again, on its data
    python deploy/kafka/localkafka.py start --state-dir DIR --fresh   # a new broker in DIR
    python deploy/kafka/localkafka.py fetch                    # only download the jars

Jars are cached outside the repository in ``$REGBRIDGE_KAFKA_CACHE`` (default
``~/.cache/regbridge/kafka/<hash of pom.xml>``). Ports are chosen free at start. The broker is
ready when its port answers and a Metadata request lists the broker. It is stopped by its
process id (written to ``DIR/broker.pid``). Standard library only: it runs before any install.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
POM = HERE / "pom.xml"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies"

SERVER_PROPERTIES = """\
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={log_dir}
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
log.cleaner.backoff.ms=1000
"""

LOG4J2 = """\
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log_file}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = info
logger.apache.name = org.apache.kafka
logger.apache.level = warn
"""


class BrokerError(RuntimeError):
    """The local broker could not be fetched, started or reached."""


def cache_dir() -> Path:
    """Where the jars live: keyed by the pom so a version change fetches anew."""
    if override := os.environ.get("REGBRIDGE_KAFKA_CACHE"):
        return Path(override)
    key = hashlib.sha256(POM.read_bytes()).hexdigest()[:12]
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "regbridge" / "kafka" / key


def fetch_jars() -> Path:
    """Copy Kafka's jars from Maven Central into the cache once; return the lib folder."""
    lib = cache_dir() / "lib"
    marker = lib / ".complete"
    if marker.exists():
        return lib
    if shutil.which("mvn") is None:
        raise BrokerError("mvn not found: install Maven (and Java 17) to run the local broker")
    tmp = lib.with_name("lib.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"localkafka: fetching Kafka jars into {lib} (once, ~45 MB)", file=sys.stderr)
    subprocess.run(
        [
            "mvn",
            "-B",
            "-q",
            "-f",
            str(POM),
            DEPENDENCY_PLUGIN,
            "-DincludeScope=runtime",
            f"-DoutputDirectory={tmp}",
        ],
        check=True,
        stdout=sys.stderr,
    )
    shutil.rmtree(lib, ignore_errors=True)
    tmp.rename(lib)
    marker.touch()
    return lib


def free_port(preferred: int = 0) -> int:
    """`preferred` if it is free, else any free loopback port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
        except OSError:
            sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def metadata_broker_count(host: str, port: int, timeout: float = 2.0) -> int:
    """Send a Metadata v1 request (all topics) and return the number of brokers listed."""
    client_id = b"localkafka"
    body = struct.pack(">hhih", 3, 1, 7, len(client_id)) + client_id + struct.pack(">i", -1)
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(struct.pack(">i", len(body)) + body)
        size = struct.unpack(">i", _recv_exact(sock, 4))[0]
        payload = _recv_exact(sock, size)
    correlation_id, broker_count = struct.unpack(">ii", payload[:8])
    if correlation_id != 7:
        raise BrokerError(f"unexpected correlation id {correlation_id} from {host}:{port}")
    return int(broker_count)


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("connection closed mid-response")
        data += chunk
    return data


# A second listener for clients that authenticate with SASL/OAUTHBEARER. Kafka's default
# validator for it accepts unsecured JWTs (alg "none", claims "sub" and "exp"): for tests only.
OAUTHBEARER_LISTENER = """\
listeners={listeners},SASL://127.0.0.1:{sasl_port}
advertised.listeners={advertised},SASL://127.0.0.1:{sasl_port}
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL:SASL_PLAINTEXT
sasl.enabled.mechanisms=OAUTHBEARER
listener.name.sasl.oauthbearer.sasl.jaas.config=\
org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required \
unsecuredLoginStringClaim_sub="broker";
"""


def start(
    state_dir: Path,
    *,
    port: int = 0,
    timeout: float = 90.0,
    heap: str = "512m",
    oauthbearer: bool = False,
    fresh: bool = False,
) -> dict[str, object]:
    """Start the broker in the background, wait until ready, write state.json.

    A state directory that holds a formatted broker (a stopped one) is started again on its data
    and its ports; an empty one, or `fresh`, is formatted anew. `oauthbearer`: also listen for
    SASL/OAUTHBEARER clients (unsecured JWTs; state.json then has `sasl_bootstrap_servers`)."""
    java = shutil.which("java")
    if java is None:
        raise BrokerError("java not found: install OpenJDK 17 to run the local broker")
    lib = fetch_jars()
    state_dir.mkdir(parents=True, exist_ok=True)
    props = state_dir / "server.properties"
    formatted = props.exists() and (state_dir / "data" / "meta.properties").exists()
    if fresh or not formatted:
        _format(java, lib, state_dir, port, oauthbearer)
    properties = props.read_text()
    port = int(_listener(properties, "PLAINTEXT"))
    sasl = _listener(properties, "SASL")
    proc = _launch(java, lib, state_dir, heap)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise BrokerError(
                f"broker exited with {proc.returncode}; see {state_dir}/broker.out and "
                f"{state_dir}/broker.log"
            )
        try:
            if metadata_broker_count("127.0.0.1", port) >= 1:
                break
        except (OSError, BrokerError, struct.error):
            pass
        if time.monotonic() > deadline:
            stop(state_dir)
            raise BrokerError(f"broker not ready after {timeout:.0f}s; see {state_dir}/broker.log")
        time.sleep(0.25)
    state: dict[str, object] = {
        "bootstrap_servers": f"127.0.0.1:{port}",
        "pid": proc.pid,
        "state_dir": str(state_dir),
        "restarted": formatted and not fresh,
    }
    if sasl is not None:
        state["sasl_bootstrap_servers"] = f"127.0.0.1:{sasl}"
    (state_dir / "state.json").write_text(json.dumps(state))
    return state


def _listener(properties: str, protocol: str) -> str | None:
    """The port of the advertised listener named `protocol`, from server.properties."""
    for line in properties.splitlines():
        if line.startswith("advertised.listeners="):
            for listener in line.split("=", 1)[1].split(","):
                if listener.startswith(f"{protocol}://"):
                    return listener.rsplit(":", 1)[1]
    return None


def _format(java: str, lib: Path, state_dir: Path, port: int, oauthbearer: bool) -> None:
    """Fresh storage and configuration on free ports (the preferred `port` when it is free)."""
    port, controller_port = free_port(port), free_port()
    log_dir = state_dir / "data"
    shutil.rmtree(log_dir, ignore_errors=True)
    props = state_dir / "server.properties"
    properties = SERVER_PROPERTIES.format(
        port=port, controller_port=controller_port, log_dir=log_dir
    )
    if oauthbearer:
        values = dict(line.split("=", 1) for line in properties.splitlines())
        drop = ("listeners=", "advertised.listeners=", "listener.security.protocol.map=")
        kept = [line for line in properties.splitlines() if not line.startswith(drop)]
        properties = "\n".join(kept)
        properties += "\n" + OAUTHBEARER_LISTENER.format(
            listeners=values["listeners"],
            advertised=values["advertised.listeners"],
            sasl_port=free_port(),
        )
    props.write_text(properties)
    (state_dir / "log4j2.properties").write_text(LOG4J2.format(log_file=state_dir / "broker.log"))
    classpath = f"{lib}/*"
    tool = [java, "-cp", classpath, "kafka.tools.StorageTool"]
    cluster_id = subprocess.run(
        [*tool, "random-uuid"], check=True, capture_output=True, text=True
    ).stdout.strip()
    subprocess.run(
        [*tool, "format", "--standalone", "-t", cluster_id, "-c", str(props)],
        check=True,
        capture_output=True,
        text=True,
    )


def _launch(java: str, lib: Path, state_dir: Path, heap: str) -> subprocess.Popen[bytes]:
    with (state_dir / "broker.out").open("ab") as out:
        proc = subprocess.Popen(
            [
                java,
                f"-Xmx{heap}",
                "-Xms128m",
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
                f"-Dlog4j2.configurationFile={state_dir / 'log4j2.properties'}",
                "-cp",
                f"{lib}/*",
                "kafka.Kafka",
                str(state_dir / "server.properties"),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    (state_dir / "broker.pid").write_text(str(proc.pid))
    return proc


def stop(state_dir: Path, *, timeout: float = 20.0) -> bool:
    """Stop the broker by its process id (SIGTERM, then SIGKILL). True if one was running."""
    pid_file = state_dir / "broker.pid"
    if not pid_file.exists():
        return False
    pid = int(pid_file.read_text())
    pid_file.unlink()
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        _reap(pid)
        time.sleep(0.1)
    os.killpg(pid, signal.SIGKILL)
    _reap(pid)
    return True


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("start", "stop"):
        cmd = sub.add_parser(name)
        cmd.add_argument("--state-dir", type=Path, required=True)
        if name == "start":
            cmd.add_argument("--port", type=int, default=0, help="preferred port (if free)")
            cmd.add_argument(
                "--oauthbearer", action="store_true", help="also a SASL/OAUTHBEARER listener"
            )
            cmd.add_argument(
                "--fresh", action="store_true", help="format anew even if DIR holds a broker"
            )
    sub.add_parser("fetch")
    args = parser.parse_args(argv)
    try:
        if args.command == "fetch":
            print(fetch_jars())
        elif args.command == "start":
            options = {"port": args.port, "oauthbearer": args.oauthbearer, "fresh": args.fresh}
            print(json.dumps(start(args.state_dir, **options)))
        else:
            print("stopped" if stop(args.state_dir) else "not running")
    except (BrokerError, subprocess.CalledProcessError) as exc:
        print(f"localkafka: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
