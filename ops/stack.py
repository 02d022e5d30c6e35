"""The local stack: a real Apache Kafka broker (KRaft), a real PostgreSQL and a real
OpenID Connect provider (Keycloak), no Docker.

Everything lives under one project-local folder (``.lgsp/`` by default, ``LGSP_STATE_DIR``
to move it). Kafka's jars and Keycloak's server distribution come from Maven Central through
``deploy/kafka/pom.xml`` and ``deploy/keycloak/pom.xml``; PostgreSQL runs from the machine's
own binaries unless ``DATABASE_URL`` points elsewhere. Nothing listens beyond loopback.
"""

from __future__ import annotations

import glob
import hashlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from shared.kafka_access import (
    BROKER,
    OPERATOR,
    SERVICE_PRINCIPALS,
    KafkaAccess,
    apply_access,
    local_password,
    service_acls,
)

REPO_ROOT = Path(__file__).resolve().parent.parent


S3_BUCKET = "lgsp-files"
S3_ACCESS_KEY = "lgsp"


class StackError(RuntimeError):
    """The stack cannot start; the message says what to install or fix."""


@dataclass(frozen=True)
class StackConfig:
    state_dir: Path
    kafka_port: int
    kafka_controller_port: int
    pg_port: int
    external_database_url: str | None
    kafka_heap: str
    kafka_bootstrap: str | None = None  # a broker elsewhere (compose), for `lgsp kafka-access`
    keycloak_port: int = 58080
    kafka_brokers: int = 1  # 1, or a KRaft cluster of 3 on this machine (`lgsp stack start --brokers 3`)
    s3_port: int = 58333

    @classmethod
    def from_env(cls, brokers: int | None = None) -> "StackConfig":
        """``brokers``: as asked, else ``LGSP_KAFKA_BROKERS``, else what the stack was last
        started with (kept in its state folder), else 1."""
        state_dir = Path(os.environ.get("LGSP_STATE_DIR", REPO_ROOT / ".lgsp")).resolve()
        kept = state_dir / "kafka" / "brokers"
        brokers = (
            brokers
            or int(os.environ.get("LGSP_KAFKA_BROKERS", "0"))
            or (int(kept.read_text()) if kept.is_file() else 1)
        )
        if brokers not in (1, 3):
            raise StackError(f"--brokers {brokers}: the local stack runs 1 broker or a cluster of 3")
        return cls(
            kafka_brokers=brokers,
            state_dir=state_dir,
            kafka_port=int(os.environ.get("LGSP_KAFKA_PORT", "59092")),
            kafka_controller_port=int(os.environ.get("LGSP_KAFKA_CONTROLLER_PORT", "59093")),
            pg_port=int(os.environ.get("LGSP_PG_PORT", "55432")),
            external_database_url=os.environ.get("DATABASE_URL") or None,
            kafka_heap=os.environ.get("LGSP_KAFKA_HEAP", "512m"),
            kafka_bootstrap=os.environ.get("LGSP_KAFKA_BOOTSTRAP") or None,
            keycloak_port=int(os.environ.get("LGSP_KEYCLOAK_PORT", "58080")),
            s3_port=int(os.environ.get("LGSP_S3_PORT", "58333")),
        )

    @property
    def kafka_dir(self) -> Path:
        return self.state_dir / "kafka"

    @property
    def kafka_libs(self) -> Path:
        return self.kafka_dir / "libs"

    @property
    def kafka_data(self) -> Path:
        return self.kafka_dir / "data"  # the single broker's; a cluster node's is node_dir(n) / "data"

    @property
    def pg_dir(self) -> Path:
        return self.state_dir / "pg"

    @property
    def pg_data(self) -> Path:
        return self.pg_dir / "data"

    @property
    def bootstrap(self) -> str:
        return self.kafka_bootstrap or ",".join(f"127.0.0.1:{self.broker_port(n)}" for n in self.nodes)

    @property
    def nodes(self) -> range:
        return range(1, self.kafka_brokers + 1)

    def broker_port(self, node: int) -> int:
        return self.kafka_port + 2 * (node - 1)

    def controller_port(self, node: int) -> int:
        return self.kafka_controller_port + 2 * (node - 1)

    def node_dir(self, node: int) -> Path:
        """A single broker keeps its files in the kafka folder itself (as it always has); the
        nodes of a cluster each have their own."""
        return self.kafka_dir if self.kafka_brokers == 1 else self.kafka_dir / f"node-{node}"

    @property
    def replication(self) -> int:
        """Replicas of every topic: 3 on a cluster (2 in sync to take a write), else 1."""
        return 3 if self.kafka_brokers >= 3 else 1

    @property
    def broker_password(self) -> str:
        """The broker's own PLAIN password: ``LGSP_KAFKA_BROKER_PASSWORD``, or made once per
        local stack and kept in its state folder."""
        if os.environ.get("LGSP_KAFKA_BROKER_PASSWORD"):
            return os.environ["LGSP_KAFKA_BROKER_PASSWORD"]
        return _kept_secret(self.kafka_dir / "broker.secret")

    @property
    def keycloak_admin_password(self) -> str:
        """Keycloak's bootstrap administrator (``admin``): made once per local stack."""
        return _kept_secret(self.keycloak_dir / "admin.secret")

    def operator(self) -> KafkaAccess:
        """The operator's tools, with the same password ``prepare_namespace`` gives them."""
        return KafkaAccess(self.bootstrap, OPERATOR, _principal_password(OPERATOR))

    @property
    def s3_dir(self) -> Path:
        return self.state_dir / "s3"

    @property
    def s3_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    @property
    def s3_secret(self) -> str:
        """The local S3 API's secret key (access key ``lgsp``): made once per local stack."""
        return _kept_secret(self.s3_dir / "s3.secret")

    def files_env(self) -> dict[str, str]:
        """How the services reach the file store of this stack (shared/files.py)."""
        return {
            "LGSP_FILES_URL": f"s3://{S3_BUCKET}?endpoint={self.s3_endpoint}",
            "LGSP_S3_ACCESS_KEY": S3_ACCESS_KEY,
            "LGSP_S3_SECRET_KEY": self.s3_secret,
        }

    @property
    def keycloak_dir(self) -> Path:
        return self.state_dir / "keycloak"

    @property
    def issuer(self) -> str:
        """The OpenID Connect issuer the services trust and the clients get tokens from."""
        from ops.identity import REALM

        return f"http://127.0.0.1:{self.keycloak_port}/realms/{REALM}"

    @property
    def database_url(self) -> str:
        """The database's owner (``lgsp``): migrations, the operator's tools and the tests."""
        return (
            self.external_database_url
            or f"postgresql://lgsp:{quote(self.pg_password, safe='')}@127.0.0.1:{self.pg_port}/lgsp"
        )

    @property
    def pg_password(self) -> str:
        """The owner's password: ``LGSP_PG_PASSWORD``, or made once per local stack and kept."""
        return os.environ.get("LGSP_PG_PASSWORD") or _kept_secret(self.state_dir / "pg.secret")

    def service_database_url(self, service: str) -> str:
        """How a service connects at run time: as its own role, which reads and writes its
        schema's rows and can change no table, trigger or right (``prepare_schemas``)."""
        return service_database_url(self.database_url, service)


def service_role(service: str) -> str:
    return f"lgsp_{service}"


def service_role_password(service: str) -> str:
    """``LGSP_DB_PASSWORD_<SERVICE>``, or in the local profile the local stack's public one."""
    variable = f"LGSP_DB_PASSWORD_{service.upper()}"
    if os.environ.get(variable):
        return os.environ[variable]
    if os.environ.get("LGSP_PROFILE") == "local":
        return f"local-db-{service}"
    raise StackError(f"{variable} is not set (a secret has no default outside LGSP_PROFILE=local)")


def service_database_url(owner_url: str, service: str) -> str:
    """``owner_url`` with the service's own role and password in place of the owner's."""
    parts = urlsplit(owner_url)
    host = parts.netloc.rpartition("@")[2]
    credentials = f"{service_role(service)}:{quote(service_role_password(service), safe='')}"
    return urlunsplit(parts._replace(netloc=f"{credentials}@{host}"))


def _kept_secret(path: Path) -> str:
    """A random secret made once and kept, readable by its owner only, in the state folder."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(24))
        path.chmod(0o600)
    return path.read_text().strip()


def say(msg: str) -> None:
    print(f"[stack] {msg}", flush=True)


# ---------------------------------------------------------------- prerequisites


def _require(tool: str, hint: str) -> str:
    path = shutil.which(tool)
    if not path:
        raise StackError(f"'{tool}' was not found on PATH. {hint}")
    return path


def java_bin() -> str:
    return _require(
        "java",
        "The local Kafka broker needs Java 17 or newer: install it, e.g. 'apt-get install -y openjdk-17-jre-headless'.",
    )


def pg_bin(name: str) -> str:
    """Find a PostgreSQL server binary: PATH first, then Debian's versioned folders."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    if candidates:
        return candidates[0]
    raise StackError(
        f"PostgreSQL's '{name}' was not found. Install the server binaries "
        "(e.g. 'apt-get install -y postgresql-15') or set DATABASE_URL to a running server."
    )


def ensure_kafka_jars(cfg: StackConfig) -> None:
    """Resolve the broker's jars from Maven Central once; later starts reuse them."""
    marker = cfg.kafka_libs / ".complete"
    if marker.exists():
        return
    mvn = _require(
        "mvn",
        "Maven fetches Kafka's jars from Maven Central: install it, e.g. 'apt-get install -y maven'.",
    )
    java_bin()
    say("resolving Apache Kafka jars from Maven Central (first run only)…")
    cfg.kafka_libs.mkdir(parents=True, exist_ok=True)
    cmd = [
        mvn,
        "-q",
        "-B",
        "-f",
        str(REPO_ROOT / "deploy/kafka/pom.xml"),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={cfg.kafka_libs}",
        "-DincludeScope=runtime",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise StackError(f"Maven could not resolve Kafka's jars:\n{result.stdout}\n{result.stderr}")
    marker.write_text("ok\n")
    say(f"{len(list(cfg.kafka_libs.glob('*.jar')))} jars in {cfg.kafka_libs}")


# ---------------------------------------------------------------- helpers


def _port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def _read_pid(path: Path) -> int | None:
    try:
        pid = int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return pid


def _as_pg_owner() -> list[str]:
    """PostgreSQL refuses to run as root; as root we run it as the 'postgres' system user."""
    if os.geteuid() != 0:
        return []
    try:
        subprocess.run(["id", "postgres"], check=True, capture_output=True)
    except subprocess.CalledProcessError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "postgres"],
            check=True,
        )
    return ["runuser", "-u", "postgres", "--"]


# ---------------------------------------------------------------- Kafka


def _broker_plain_jaas(cfg: StackConfig) -> str:
    """The nodes' own identity, `broker`: what a node presents and the one user it accepts on PLAIN."""
    return (
        "org.apache.kafka.common.security.plain.PlainLoginModule "
        f'required username="{BROKER}" password="{cfg.broker_password}" user_{BROKER}="{cfg.broker_password}";'
    )


def _kafka_properties(cfg: StackConfig, node: int = 1) -> str:
    port, controller, replicas = cfg.broker_port(node), cfg.controller_port(node), cfg.replication
    voters = ",".join(f"{n}@127.0.0.1:{cfg.controller_port(n)}" for n in cfg.nodes)
    return "\n".join(
        [
            f"# Written by ops/stack.py for the local stack: node {node} of {cfg.kafka_brokers}.",
            "process.roles=broker,controller",
            f"node.id={node}",
            f"controller.quorum.voters={voters}",
            # Clients authenticate (SASL/SCRAM-SHA-512, one principal each) and are authorised
            # by ACLs, deny by default (shared/kafka_access.py). The nodes speak PLAIN as `broker`
            # to each other, on the broker listener and on the controller listener alike: nobody
            # is anonymous anywhere, and no anonymous principal is a super user.
            f"listeners=SASL_PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}",
            f"advertised.listeners=SASL_PLAINTEXT://127.0.0.1:{port}",
            "controller.listener.names=CONTROLLER",
            "listener.security.protocol.map=SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT",
            "inter.broker.listener.name=SASL_PLAINTEXT",
            "sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN",
            "sasl.mechanism.inter.broker.protocol=PLAIN",
            "sasl.mechanism.controller.protocol=PLAIN",
            "listener.name.controller.sasl.enabled.mechanisms=PLAIN",
            f"listener.name.controller.plain.sasl.jaas.config={_broker_plain_jaas(cfg)}",
            f"listener.name.sasl_plaintext.plain.sasl.jaas.config={_broker_plain_jaas(cfg)}",
            "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config="
            "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            f"super.users=User:{BROKER};User:{OPERATOR}",
            "allow.everyone.if.no.acl.found=false",
            f"log.dirs={cfg.node_dir(node) / 'data'}",
            # Topics come from shared/topics.py only: a typo must fail, not create a topic.
            "auto.create.topics.enable=false",
            "num.partitions=6",
            # On a cluster every record is on 3 brokers and a write needs 2 of them: one broker
            # may die without losing or refusing anything.
            f"default.replication.factor={replicas}",
            f"min.insync.replicas={min(2, replicas)}",
            f"offsets.topic.replication.factor={replicas}",
            "offsets.topic.num.partitions=10",
            f"transaction.state.log.replication.factor={replicas}",
            f"transaction.state.log.min.isr={min(2, replicas)}",
            "transaction.state.log.num.partitions=4",
            # One machine: no reason to wait for more group members to join.
            "group.initial.rebalance.delay.ms=0",
            # The default 128 MiB dedupe buffer does not fit a small heap.
            "log.cleaner.dedupe.buffer.size=16777216",
            "",
        ]
    )


def _kafka_log4j(cfg: StackConfig, node: int = 1) -> str:
    return "\n".join(
        [
            "log4j.rootLogger=INFO, file",
            "log4j.appender.file=org.apache.log4j.RollingFileAppender",
            f"log4j.appender.file.File={cfg.node_dir(node) / 'server.log'}",
            "log4j.appender.file.MaxFileSize=20MB",
            "log4j.appender.file.MaxBackupIndex=2",
            "log4j.appender.file.layout=org.apache.log4j.PatternLayout",
            "log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n",
            "log4j.logger.kafka=INFO",
            "log4j.logger.org.apache.kafka=WARN",
            "",
        ]
    )


def _kafka_java(cfg: StackConfig, main_class: str, *args: str, node: int = 1) -> list[str]:
    classpath = os.pathsep.join(sorted(str(p) for p in cfg.kafka_libs.glob("*.jar")))
    return [
        java_bin(),
        f"-Xms{cfg.kafka_heap}",
        f"-Xmx{cfg.kafka_heap}",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        f"-Dlog4j.configuration=file:{cfg.node_dir(node) / 'log4j.properties'}",
        "-cp",
        classpath,
        main_class,
        *args,
    ]


def kafka_pid(cfg: StackConfig, node: int = 1) -> int | None:
    return _read_pid(cfg.node_dir(node) / "kafka.pid")


def kafka_pids(cfg: StackConfig) -> dict[int, int]:
    """Node -> pid of every broker running."""
    return {n: pid for n in cfg.nodes if (pid := kafka_pid(cfg, n))}


def start_kafka(cfg: StackConfig, timeout: float = 90.0) -> None:
    """Every broker of the stack (one, or the three nodes of a cluster), then waits until the
    cluster answers with all of them."""
    if all(kafka_pid(cfg, n) and _port_open(cfg.broker_port(n)) for n in cfg.nodes):
        say(f"kafka already running on {cfg.bootstrap}")
        return
    other = StackConfig.from_env(3) if cfg.kafka_brokers == 1 else StackConfig.from_env(1)
    if kafka_pids(other):
        raise StackError(
            f"Kafka runs with {other.kafka_brokers} broker(s): stop the stack first (lgsp stack stop), "
            f"then start it with --brokers {cfg.kafka_brokers}"
        )
    ensure_kafka_jars(cfg)
    cfg.kafka_dir.mkdir(parents=True, exist_ok=True)
    (cfg.kafka_dir / "brokers").write_text(f"{cfg.kafka_brokers}\n")
    procs = [proc for n in cfg.nodes if (proc := start_kafka_node(cfg, n, wait=False)) is not None]
    for proc in procs:
        _wait_kafka_ready(cfg, proc, timeout)
    say(
        "kafka ready"
        + (f": {cfg.kafka_brokers} brokers, every topic on {cfg.replication}" if cfg.kafka_brokers > 1 else "")
    )


def start_kafka_node(cfg: StackConfig, node: int, wait: bool = True, timeout: float = 90.0) -> subprocess.Popen | None:
    """One broker (formatting its storage the first time); None when it already runs."""
    if kafka_pid(cfg, node) and _port_open(cfg.broker_port(node)):
        return None
    if _port_open(cfg.broker_port(node)):
        raise StackError(f"port {cfg.broker_port(node)} is taken by another process; set LGSP_KAFKA_PORT")
    here = cfg.node_dir(node)
    here.mkdir(parents=True, exist_ok=True)
    props = here / "server.properties"
    props.write_text(_kafka_properties(cfg, node))
    (here / "log4j.properties").write_text(_kafka_log4j(cfg, node))
    if not (here / "data" / "meta.properties").exists():
        cluster_id = _kafka_cluster_id(cfg)
        say(f"formatting Kafka storage of node {node} (cluster {cluster_id})")
        result = subprocess.run(
            _kafka_java(cfg, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(props), node=node),
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise StackError(f"Kafka storage format failed:\n{result.stdout}\n{result.stderr}")
    out = open(here / "stdout.log", "ab")
    proc = subprocess.Popen(
        _kafka_java(cfg, "kafka.Kafka", str(props), node=node),
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    (here / "kafka.pid").write_text(str(proc.pid))
    say(f"kafka node {node} starting (pid {proc.pid}) on 127.0.0.1:{cfg.broker_port(node)}")
    if wait:
        _wait_kafka_ready(cfg, proc, timeout)
    return proc


def _kafka_cluster_id(cfg: StackConfig) -> str:
    path = cfg.kafka_dir / "cluster.id"
    if path.exists():
        return path.read_text().strip()
    result = subprocess.run(_kafka_java(cfg, "kafka.tools.StorageTool", "random-uuid"), capture_output=True, text=True)
    cluster_id = result.stdout.strip().splitlines()[-1] if result.returncode == 0 else ""
    if not cluster_id:
        raise StackError(f"could not create a Kafka cluster id:\n{result.stderr}")
    path.write_text(cluster_id)
    return cluster_id


def _wait_kafka_ready(cfg: StackConfig, proc: subprocess.Popen | None, timeout: float) -> None:
    """Until every broker of the stack is in the cluster's metadata and listens: a KRaft
    broker registers with the controllers a moment before its own listener opens, so the
    metadata alone once let the access set-up (and clients) reach a node not yet there."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            logs = sorted(cfg.kafka_dir.glob("**/stdout.log"), key=lambda p: p.stat().st_mtime)
            tail = logs[-1].read_text(errors="replace")[-3000:] if logs else ""
            raise StackError(f"kafka exited with code {proc.returncode}:\n{tail}")
        if all(_port_open(cfg.broker_port(n)) for n in cfg.nodes) and _kafka_answers(cfg):
            return
        time.sleep(0.5)
    raise StackError(
        f"kafka did not become ready within {timeout:.0f}s; see the server.log files under {cfg.kafka_dir}"
    )


def _kafka_answers(cfg: StackConfig) -> bool:
    """A metadata round trip: the port alone opens before the broker can serve."""
    import asyncio
    import logging

    from aiokafka.admin import AIOKafkaAdminClient

    logging.getLogger("aiokafka.conn").setLevel(logging.ERROR)  # "password in the clear": loopback only, by design

    async def probe() -> bool:
        # as the broker's own PLAIN identity: the SCRAM users may not exist yet
        admin = AIOKafkaAdminClient(
            bootstrap_servers=cfg.bootstrap,
            request_timeout_ms=3000,
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism="PLAIN",
            sasl_plain_username=BROKER,
            sasl_plain_password=cfg.broker_password,
        )
        try:
            await admin.start()
            await admin.list_topics()
            return len((await admin.describe_cluster())["brokers"]) >= cfg.kafka_brokers
        except Exception:
            return False
        finally:
            await admin.close()

    return asyncio.run(probe())


def stop_kafka(cfg: StackConfig, timeout: float = 60.0, kill: bool = False) -> None:
    if not kafka_pids(cfg):
        say("kafka not running")
        return
    for n in cfg.nodes:
        stop_kafka_node(cfg, n, timeout, kill)


def stop_kafka_node(cfg: StackConfig, node: int, timeout: float = 60.0, kill: bool = False) -> None:
    pidfile = cfg.node_dir(node) / "kafka.pid"
    pid = _read_pid(pidfile)
    if not pid:
        return
    # SIGTERM runs the broker's controlled shutdown: logs are flushed and closed cleanly.
    os.kill(pid, signal.SIGKILL if kill else signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _read_pid(pidfile):
        time.sleep(0.3)
    if _read_pid(pidfile):
        say(f"kafka node {node} did not stop in time; killing it")
        os.kill(pid, signal.SIGKILL)
        time.sleep(1)
    pidfile.unlink(missing_ok=True)
    say("kafka stopped" if cfg.kafka_brokers == 1 else f"kafka node {node} stopped")


# ---------------------------------------------------------------- PostgreSQL


def pg_running(cfg: StackConfig) -> bool:
    return _port_open(cfg.pg_port) and (cfg.pg_data / "postmaster.pid").exists()


def start_postgres(cfg: StackConfig, timeout: float = 60.0) -> None:
    if cfg.external_database_url:
        say("DATABASE_URL is set: using that server, not starting a private one")
        _wait_database(cfg, timeout)
        return
    if pg_running(cfg):
        say(f"postgres already running on 127.0.0.1:{cfg.pg_port}")
        _ensure_database(cfg)
        return
    if _port_open(cfg.pg_port):
        raise StackError(f"port {cfg.pg_port} is taken by another process; set LGSP_PG_PORT")
    runas = _as_pg_owner()
    cfg.pg_dir.mkdir(parents=True, exist_ok=True)
    if runas:
        # The data folder and the server's log must belong to the user that runs it.
        subprocess.run(["chown", "postgres:", str(cfg.pg_dir)], check=True)
    if not (cfg.pg_data / "PG_VERSION").exists():
        say("initialising a private PostgreSQL cluster")
        # every connection gives a password (SCRAM); the owner's is made once and kept
        with tempfile.NamedTemporaryFile("w", suffix=".pw", delete=False) as pwfile:
            pwfile.write(cfg.pg_password + "\n")
        try:
            if runas:
                subprocess.run(["chown", "postgres:", pwfile.name], check=True)
            result = subprocess.run(
                runas
                + [
                    pg_bin("initdb"),
                    "-D",
                    str(cfg.pg_data),
                    "-U",
                    "lgsp",
                    "-A",
                    "scram-sha-256",
                    f"--pwfile={pwfile.name}",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                ],
                capture_output=True,
                text=True,
            )
        finally:
            os.unlink(pwfile.name)
        if result.returncode != 0:
            raise StackError(f"initdb failed:\n{result.stdout}\n{result.stderr}")
    options = (
        f"-p {cfg.pg_port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
        "-c max_connections=200 -c fsync=on -c shared_buffers=128MB "
        # per-statement counts for the bench's profile (ops/bench.py) and for operators
        "-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all"
    )
    result = subprocess.run(
        runas
        + [
            pg_bin("pg_ctl"),
            "-D",
            str(cfg.pg_data),
            "-l",
            str(cfg.pg_dir / "postgres.log"),
            "-o",
            options,
            "-w",
            "-t",
            str(int(timeout)),
            "start",
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        log = cfg.pg_dir / "postgres.log"
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise StackError(f"postgres did not start:\n{result.stdout}\n{result.stderr}\n{tail}")
    say(f"postgres ready on 127.0.0.1:{cfg.pg_port}")
    _ensure_database(cfg)


def _ensure_database(cfg: StackConfig) -> None:
    import asyncio

    import asyncpg

    async def create() -> None:
        await _require_passwords(cfg)
        conn = await asyncpg.connect(_maintenance_url(cfg), timeout=10)
        try:
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = 'lgsp'"):
                await conn.execute("CREATE DATABASE lgsp ENCODING 'UTF8' TEMPLATE template0")
                say("created database 'lgsp'")
        finally:
            await conn.close()
        conn = await asyncpg.connect(cfg.database_url, timeout=10)
        try:
            await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        finally:
            await conn.close()

    asyncio.run(create())


HBA = """# Written by ops/stack.py: every connection gives its password (SCRAM), none is trusted.
host all all 127.0.0.1/32 scram-sha-256
host all all ::1/128 scram-sha-256
"""


def _maintenance_url(cfg: StackConfig) -> str:
    return urlunsplit(urlsplit(cfg.database_url)._replace(path="/postgres"))


async def _require_passwords(cfg: StackConfig) -> None:
    """A cluster made before passwords were required (``-A trust``) gets the owner's password
    and the SCRAM-only pg_hba.conf, and is told to reload it."""
    import asyncpg

    hba = cfg.pg_data / "pg_hba.conf"
    if hba.read_text() == HBA:
        return
    # still trusted (the password is ignored), or a new cluster: the maintenance database exists
    conn = await asyncpg.connect(_maintenance_url(cfg), timeout=10)
    try:
        await conn.execute(f"ALTER ROLE lgsp PASSWORD '{cfg.pg_password}'")
        hba.write_text(HBA)
        await conn.fetchval("SELECT pg_reload_conf()")
    finally:
        await conn.close()
    say("postgres now requires a password of every connection")


def _wait_database(cfg: StackConfig, timeout: float) -> None:
    import asyncio

    import asyncpg

    async def probe() -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                conn = await asyncpg.connect(cfg.database_url, timeout=5)
                await conn.close()
                return
            except Exception as exc:  # noqa: BLE001 - any failure means "not yet"
                if time.monotonic() > deadline:
                    raise StackError(f"database at DATABASE_URL is not reachable: {exc}") from exc
                await asyncio.sleep(0.5)

    asyncio.run(probe())


def stop_postgres(cfg: StackConfig) -> None:
    if cfg.external_database_url:
        return
    if not (cfg.pg_data / "postmaster.pid").exists():
        say("postgres not running")
        return
    subprocess.run(
        _as_pg_owner() + [pg_bin("pg_ctl"), "-D", str(cfg.pg_data), "-m", "fast", "-w", "stop"],
        capture_output=True,
        text=True,
    )
    say("postgres stopped")


# ---------------------------------------------------------------- Keycloak (the identity provider)


def _keycloak_home(cfg: StackConfig) -> Path:
    """Keycloak's server distribution, fetched from Maven Central and unpacked once."""
    homes = sorted(cfg.keycloak_dir.glob("keycloak-*/bin/kc.sh"))
    if homes:
        return homes[-1].parent.parent
    mvn = _require("mvn", "Maven fetches Keycloak from Maven Central: install it, e.g. 'apt-get install -y maven'.")
    java_bin()
    say("fetching Keycloak's server distribution from Maven Central (first run only, about 160 MB)…")
    download = cfg.keycloak_dir / "download"
    download.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [
            mvn,
            "-q",
            "-B",
            "-f",
            str(REPO_ROOT / "deploy/keycloak/pom.xml"),
            "dependency:copy",
            f"-DoutputDirectory={download}",
        ],
        capture_output=True,
        text=True,
    )
    archives = sorted(download.glob("keycloak-quarkus-dist-*.zip"))
    if result.returncode != 0 or not archives:
        raise StackError(f"Maven could not fetch Keycloak:\n{result.stdout}\n{result.stderr}")
    import zipfile

    with zipfile.ZipFile(archives[-1]) as archive:
        for member in archive.infolist():
            path = Path(archive.extract(member, cfg.keycloak_dir))
            mode = member.external_attr >> 16
            if mode:
                path.chmod(mode & 0o777)
    shutil.rmtree(download)
    return _keycloak_home(cfg)


def keycloak_pid(cfg: StackConfig) -> int | None:
    return _read_pid(cfg.keycloak_dir / "keycloak.pid")


def start_keycloak(cfg: StackConfig, timeout: float = 180.0) -> None:
    """Keycloak in development mode (its own file database under the state folder), seeded
    from the realm file kept with the reference data; a changed realm file is imported afresh."""
    from ops.identity import REALM_FILE

    realm_hash = hashlib.sha256(REALM_FILE.read_bytes()).hexdigest()
    marker = cfg.keycloak_dir / "realm.sha256"
    current = marker.exists() and marker.read_text().strip() == realm_hash
    if keycloak_pid(cfg) and _keycloak_answers(cfg):
        if current:
            say(f"keycloak already running: {cfg.issuer}")
            return
        say("the realm file changed: restarting keycloak to import it")
        stop_keycloak(cfg)
    if _port_open(cfg.keycloak_port):
        raise StackError(f"port {cfg.keycloak_port} is taken by another process; set LGSP_KEYCLOAK_PORT")
    home = _keycloak_home(cfg)
    if not current:
        shutil.rmtree(home / "data", ignore_errors=True)  # import the realm as it is now
    (home / "data/import").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REALM_FILE, home / "data/import/lgsp-realm.json")
    env = {
        **os.environ,
        "JAVA_OPTS_KC_HEAP": "-Xms64m -Xmx384m",
        "KC_BOOTSTRAP_ADMIN_USERNAME": "admin",
        "KC_BOOTSTRAP_ADMIN_PASSWORD": cfg.keycloak_admin_password,
    }
    out = open(cfg.keycloak_dir / "keycloak.log", "ab")
    proc = subprocess.Popen(
        [
            str(home / "bin/kc.sh"),
            "start-dev",
            "--import-realm",
            f"--http-port={cfg.keycloak_port}",
            "--http-host=127.0.0.1",
            "--hostname-strict=false",
            "--log-level=WARN",
        ],
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        env=env,
    )
    (cfg.keycloak_dir / "keycloak.pid").write_text(str(proc.pid))
    say(f"keycloak starting (pid {proc.pid}) on 127.0.0.1:{cfg.keycloak_port}")
    deadline = time.monotonic() + timeout
    while not _keycloak_answers(cfg):
        if proc.poll() is not None:
            tail = (cfg.keycloak_dir / "keycloak.log").read_text(errors="replace")[-3000:]
            raise StackError(f"keycloak exited with code {proc.returncode}:\n{tail}")
        if time.monotonic() > deadline:
            raise StackError(
                f"keycloak did not become ready within {timeout:.0f}s; see {cfg.keycloak_dir}/keycloak.log"
            )
        time.sleep(1)
    marker.write_text(realm_hash)
    say(f"keycloak ready: {cfg.issuer}")


def _keycloak_answers(cfg: StackConfig) -> bool:
    """The realm's discovery document is served: the realm is imported and keys exist."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"{cfg.issuer}/.well-known/openid-configuration", timeout=3) as r:
            return r.status == 200
    except OSError:
        return False


def stop_keycloak(cfg: StackConfig, timeout: float = 30.0) -> None:
    pid = keycloak_pid(cfg)
    if not pid:
        say("keycloak not running")
        return
    os.killpg(pid, signal.SIGTERM)  # kc.sh runs java as its child: stop the whole group
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and keycloak_pid(cfg):
        time.sleep(0.3)
    if keycloak_pid(cfg):
        os.killpg(pid, signal.SIGKILL)
    (cfg.keycloak_dir / "keycloak.pid").unlink(missing_ok=True)
    say("keycloak stopped")


# ---------------------------------------------------------------- S3Proxy: the S3 API


def _s3proxy_jar(cfg: StackConfig) -> Path:
    """S3Proxy's self-contained jar, fetched from Maven Central once."""
    jar = cfg.s3_dir / "s3proxy.jar"
    if jar.is_file():
        return jar
    mvn = _require("mvn", "Maven fetches S3Proxy from Maven Central: install it, e.g. 'apt-get install -y maven'.")
    say("fetching S3Proxy from Maven Central (first run only, about 40 MB)…")
    cfg.s3_dir.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [
            mvn,
            "-q",
            "-B",
            "-f",
            str(REPO_ROOT / "deploy/s3proxy/pom.xml"),
            "dependency:copy",
            f"-DoutputDirectory={cfg.s3_dir}",
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0 or not jar.is_file():
        raise StackError(f"Maven could not fetch S3Proxy:\n{result.stdout}\n{result.stderr}")
    return jar


def s3_pid(cfg: StackConfig) -> int | None:
    return _read_pid(cfg.s3_dir / "s3proxy.pid")


def start_s3(cfg: StackConfig, timeout: float = 60.0) -> None:
    """S3Proxy on loopback, keeping its objects in a folder of the state directory; it checks
    every request's AWS signature against the stack's own key."""
    if s3_pid(cfg) and _port_open(cfg.s3_port):
        say(f"s3 already running: {cfg.s3_endpoint}")
        return
    if _port_open(cfg.s3_port):
        raise StackError(f"port {cfg.s3_port} is taken by another process; set LGSP_S3_PORT")
    jar = _s3proxy_jar(cfg)
    data = cfg.s3_dir / "data"
    data.mkdir(parents=True, exist_ok=True)
    conf = cfg.s3_dir / "s3proxy.conf"
    conf.write_text(
        f"s3proxy.endpoint={cfg.s3_endpoint}\n"
        "s3proxy.authorization=aws-v2-or-v4\n"
        f"s3proxy.identity={S3_ACCESS_KEY}\n"
        f"s3proxy.credential={cfg.s3_secret}\n"
        "jclouds.provider=filesystem-nio2\n"
        f"jclouds.identity={S3_ACCESS_KEY}\n"
        f"jclouds.credential={cfg.s3_secret}\n"
        f"jclouds.filesystem.basedir={data}\n"
    )
    conf.chmod(0o600)
    out = open(cfg.s3_dir / "s3proxy.log", "ab")
    proc = subprocess.Popen(
        [java_bin(), "-Xms32m", "-Xmx192m", "-jar", str(jar), "--properties", str(conf)],
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    (cfg.s3_dir / "s3proxy.pid").write_text(str(proc.pid))
    deadline = time.monotonic() + timeout
    while not _port_open(cfg.s3_port):
        if proc.poll() is not None:
            tail = (cfg.s3_dir / "s3proxy.log").read_text(errors="replace")[-2000:]
            raise StackError(f"s3proxy exited with code {proc.returncode}:\n{tail}")
        if time.monotonic() > deadline:
            raise StackError(f"s3proxy did not listen within {timeout:.0f}s; see {cfg.s3_dir}/s3proxy.log")
        time.sleep(0.3)
    (data / S3_BUCKET).mkdir(exist_ok=True)  # the bucket: a folder to this back end
    say(f"s3 ready (pid {proc.pid}): {cfg.s3_endpoint}, bucket {S3_BUCKET}")


def stop_s3(cfg: StackConfig, timeout: float = 20.0, kill: bool = False) -> None:
    pid = s3_pid(cfg)
    if not pid:
        say("s3 not running")
        return
    try:
        os.killpg(pid, signal.SIGKILL if kill else signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _port_open(cfg.s3_port):
        time.sleep(0.2)
    (cfg.s3_dir / "s3proxy.pid").unlink(missing_ok=True)
    say("s3 stopped")


# ---------------------------------------------------------------- the whole stack


def start(cfg: StackConfig | None = None) -> StackConfig:
    cfg = cfg or StackConfig.from_env()
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    start_postgres(cfg)
    start_kafka(cfg)
    prepare_namespace(cfg, "lgsp", "")
    start_s3(cfg)
    start_keycloak(cfg)
    return cfg


def _principal_password(name: str) -> str:
    """A principal's password: ``LGSP_KAFKA_PASSWORD_<NAME>``, or in the local profile the
    local stack's public one."""
    variable = f"LGSP_KAFKA_PASSWORD_{name.upper()}"
    if os.environ.get(variable):
        return os.environ[variable]
    if os.environ.get("LGSP_PROFILE") == "local":
        return local_password(name)
    raise StackError(f"{variable} is not set (a secret has no default outside LGSP_PROFILE=local)")


def prepare_namespace(cfg: StackConfig, topic_prefix: str, schema_prefix: str) -> None:
    """The users, the topics ``<topic_prefix>.*`` and the services' rights on them."""
    from shared.topics import ensure_topics_sync

    users = {name: _principal_password(name) for name in (*SERVICE_PRINCIPALS, OPERATOR)}
    apply_access(cfg.bootstrap, cfg.broker_password, users, service_acls(topic_prefix, schema_prefix))
    created = ensure_topics_sync(cfg.operator(), topic_prefix, cfg.replication)
    if created:
        say(f"created topics: {', '.join(created)}")
    prepare_schemas(cfg, schema_prefix)


def prepare_schemas(cfg: StackConfig, schema_prefix: str) -> None:
    """Each service's schema ``<schema_prefix><service>``, migrated as the database's owner,
    and the service's own role, which may read and write its rows and nothing more: no DDL, no
    other schema, and on the audit log only INSERT and SELECT (it cannot drop the trigger that
    keeps the log append-only: the trigger is the owner's)."""
    import asyncio

    import asyncpg

    from shared.db import migrate
    from shared.topics import ALL_SERVICES

    async def prepare() -> None:
        conn = await asyncpg.connect(cfg.database_url, timeout=10)
        try:
            # Runs side by side (ops/instants.py) share the roles: one prepares at a time, or
            # PostgreSQL refuses two ALTER ROLE of one role at once ("tuple concurrently updated").
            await conn.execute("SELECT pg_advisory_lock(hashtext('lgsp prepare_schemas'))")
            for service in ALL_SERVICES:
                role, schema = service_role(service), f"{schema_prefix}{service}"
                password = service_role_password(service).replace("'", "''")
                if await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role):
                    await conn.execute(f"ALTER ROLE {role} LOGIN PASSWORD '{password}'")
                else:
                    await conn.execute(
                        f"CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT PASSWORD '{password}'"
                    )
                pool = await asyncpg.create_pool(
                    cfg.database_url, min_size=1, max_size=1, server_settings={"search_path": f'"{schema}", public'}
                )
                try:
                    await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
                    await migrate(pool, schema, REPO_ROOT / "services" / service / "migrations")
                finally:
                    await pool.close()
                await conn.execute(
                    f'GRANT USAGE ON SCHEMA "{schema}" TO {role}; '
                    f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "{schema}" TO {role}; '
                    f'REVOKE UPDATE, DELETE ON "{schema}".audit_log FROM {role}; '
                    f'GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA "{schema}" TO {role}'
                )
        finally:
            await conn.close()

    asyncio.run(prepare())


def drop_namespace(
    cfg: StackConfig, topic_prefix: str, schema_prefix: str, *, every_topic_starting: bool = False
) -> tuple[int, int]:
    """Deletes the topics ``<topic_prefix>.*`` (with ``every_topic_starting``: every topic whose
    name starts with ``topic_prefix``) and the schemas ``<schema_prefix>*``: a run that measures
    starts from nothing, and a test run leaves nothing behind. Returns (topics, schemas)."""
    import asyncio

    import asyncpg
    from aiokafka.admin import AIOKafkaAdminClient

    if not schema_prefix or not topic_prefix or topic_prefix == "lgsp":
        raise StackError("refusing to drop the main namespace")

    async def drop() -> tuple[int, int]:
        admin = AIOKafkaAdminClient(**cfg.operator().options(), request_timeout_ms=30000)
        await admin.start()
        try:
            start = topic_prefix if every_topic_starting else topic_prefix + "."
            doomed = [t for t in await admin.list_topics() if t.startswith(start)]
            if doomed:
                await admin.delete_topics(doomed)
                deadline = time.monotonic() + 60
                while set(doomed) & set(await admin.list_topics()) and time.monotonic() < deadline:
                    await asyncio.sleep(0.5)
        finally:
            await admin.close()
        conn = await asyncpg.connect(cfg.database_url)
        try:
            schemas = [
                r["nspname"]
                for r in await conn.fetch(
                    "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1)", schema_prefix
                )
            ]
            for schema in schemas:
                await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        finally:
            await conn.close()
        return len(doomed), len(schemas)

    return asyncio.run(drop())


def stop(cfg: StackConfig | None = None) -> None:
    cfg = cfg or StackConfig.from_env()
    stop_keycloak(cfg)
    stop_s3(cfg)
    stop_kafka(cfg)
    stop_postgres(cfg)


def status(cfg: StackConfig | None = None) -> dict[str, str]:
    cfg = cfg or StackConfig.from_env()
    pids = {n: pid for n, pid in kafka_pids(cfg).items() if _port_open(cfg.broker_port(n))}
    kafka = (
        f"running, {len(pids)} of {cfg.kafka_brokers} broker(s) (pids {', '.join(map(str, pids.values()))}), {cfg.bootstrap}"
        if pids
        else "stopped"
    )
    if cfg.external_database_url:
        pg = "external (DATABASE_URL)"
    else:
        pg = f"running, 127.0.0.1:{cfg.pg_port}" if pg_running(cfg) else "stopped"
    keycloak = f"running, {cfg.issuer}" if keycloak_pid(cfg) and _keycloak_answers(cfg) else "stopped"
    s3 = f"running, {cfg.s3_endpoint}" if s3_pid(cfg) and _port_open(cfg.s3_port) else "stopped"
    return {"kafka": kafka, "postgres": pg, "keycloak": keycloak, "s3": s3, "state": str(cfg.state_dir)}


def reset(cfg: StackConfig | None = None) -> None:
    """Stop everything and delete the stack's data (the downloaded jars stay)."""
    cfg = cfg or StackConfig.from_env()
    stop(cfg)
    keycloak_data = [bin_dir.parent / "data" for bin_dir in cfg.keycloak_dir.glob("keycloak-*/bin")]
    for path in (
        cfg.kafka_data,
        *cfg.kafka_dir.glob("node-*"),
        cfg.kafka_dir / "cluster.id",
        cfg.pg_data,
        cfg.state_dir / "traces",
        cfg.keycloak_dir / "realm.sha256",
        cfg.s3_dir / "data",
        *keycloak_data,
    ):
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    say("stack data removed")


def main(argv: list[str]) -> int:
    """`python -m ops.stack start|stop|status|reset|restart-kafka` (also reached via `lgsp stack`)."""
    action = argv[0] if argv else "status"
    brokers = next((int(a.split("=", 1)[1]) for a in argv[1:] if a.startswith("--brokers=")), None)
    try:
        cfg = StackConfig.from_env(brokers if action == "start" else None)
    except StackError as exc:
        print(f"[stack] ERROR: {exc}", file=sys.stderr)
        return 2
    try:
        if action == "start":
            start(cfg)
        elif action == "stop":
            stop(cfg)
        elif action == "reset":
            reset(cfg)
        elif action == "restart-kafka":
            stop_kafka(cfg)
            start_kafka(cfg)
        elif action == "kill-kafka":
            stop_kafka(cfg, kill=True)
        elif action == "start-kafka":
            start_kafka(cfg)
        elif action == "kill-s3":
            stop_s3(cfg, kill=True)
        elif action == "start-s3":
            start_s3(cfg)
        elif action == "status":
            for name, value in status(cfg).items():
                print(f"{name:9} {value}")
        else:
            print(f"unknown action {action!r}: start, stop, status, reset, restart-kafka", file=sys.stderr)
            return 2
    except StackError as exc:
        print(f"[stack] ERROR: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
