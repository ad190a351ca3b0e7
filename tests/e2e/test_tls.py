"""TLS on the frontend port: the Python SDK and the `temporal` CLI over TLS, plaintext clients
refused, mTLS, and a certificate rotated in place served without a restart.

The certificates are made by the test with the `openssl` command. Chronicle only: the
reference's `temporal server start-dev` has no TLS flags (temporal CLI 1.9.1), so there is
nothing to compare these with there.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

import pytest
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode, TLSConfig

import backends
from cli import Cli
from conftest import ServerHandle, _chronicle_bin
from helpers import eventually, new_worker, unique

pytestmark = pytest.mark.skipif(
    os.environ.get("CHRONICLE_TEST_TARGET", "chronicle").strip().lower() == "reference",
    reason="the reference's start-dev has no TLS flags",
)

CONNECT_TIMEOUT_S = 15


# -- certificates ----------------------------------------------------------------------------


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def _key(cwd: Path, name: str) -> None:
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", f"{name}.key", cwd=cwd)


def _ca(cwd: Path, name: str, subject: str) -> None:
    _key(cwd, name)
    _openssl(
        "req", "-x509", "-new", "-key", f"{name}.key", "-subj", f"/CN={subject}", "-days", "2",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", f"{name}.pem", cwd=cwd,
    )


def _leaf(cwd: Path, name: str, subject: str, issuer: str, extensions: str) -> None:
    _key(cwd, name)
    _openssl("req", "-new", "-key", f"{name}.key", "-subj", f"/CN={subject}", "-out", f"{name}.csr", cwd=cwd)
    (cwd / f"{name}.ext").write_text(f"basicConstraints=CA:FALSE\n{extensions}\n")
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", f"{issuer}.pem", "-CAkey", f"{issuer}.key",
        "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem", cwd=cwd,
    )


SERVER_EXTENSIONS = "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth"


@dataclass
class Certs:
    dir: Path

    def path(self, name: str) -> Path:
        return self.dir / name

    def read(self, name: str) -> bytes:
        return self.path(name).read_bytes()

    def tls(self, client: str | None = None, ca: str = "ca.pem") -> TLSConfig:
        """The SDK's TLS settings: trust `ca`, present `client` (a cert name) if given."""
        return TLSConfig(
            server_root_ca_cert=self.read(ca),
            client_cert=self.read(f"{client}.pem") if client else None,
            client_private_key=self.read(f"{client}.key") if client else None,
        )


@pytest.fixture(scope="module")
def certs():
    """A server CA with two server certificates for localhost / 127.0.0.1, a client CA with
    one client certificate, and a client certificate the client CA did not sign."""
    if not shutil.which("openssl"):
        pytest.skip("needs the openssl command")
    root = Path(tempfile.mkdtemp(prefix="chronicle-e2e-certs-"))
    _ca(root, "ca", "Chronicle E2E CA")
    _leaf(root, "server", "localhost", "ca", SERVER_EXTENSIONS)
    _leaf(root, "rotated", "localhost-rotated", "ca", SERVER_EXTENSIONS)
    _ca(root, "client-ca", "Chronicle E2E Client CA")
    _leaf(root, "client", "worker-1", "client-ca", "extendedKeyUsage=clientAuth")
    _leaf(root, "stranger", "stranger", "ca", "extendedKeyUsage=clientAuth")
    yield Certs(root)
    shutil.rmtree(root, ignore_errors=True)


# -- servers ---------------------------------------------------------------------------------


class TlsServer(ServerHandle):
    """Chronicle on SQLite with TLS: through start-dev's flags, or with `config` (a
    `[server.tls]` table) through `server start --config`. `client_tls` is how the probe and
    `client()` connect."""

    def __init__(self, tmp_dir: Path, client_tls: TLSConfig, *, flags: list[str] | None = None,
                 config: str | None = None) -> None:
        super().__init__("chronicle", tmp_dir)
        self.backend = "sqlite"
        self.client_tls = client_tls
        self.flags = flags or []
        self.tls_table = config

    def command(self) -> list[str]:
        if self.tls_table is None:
            return [
                _chronicle_bin(), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(self.port),
                "--db-filename", str(self.db_path), "--log-level", "info", *self.flags,
            ]
        self._config_path.write_text(
            f'[server]\nip = "127.0.0.1"\nport = {self.port}\n'
            f'[persistence]\nbackend = "sqlite"\ndsn = "{self.db_path}"\n'
            f"[server.tls]\n{self.tls_table}\n"
        )
        return [_chronicle_bin(), "server", "start", "--config", str(self._config_path)]

    async def _probe(self) -> None:
        await asyncio.wait_for(self.client(), 5)

    async def client(self, tls: TLSConfig | bool | None = None) -> Client:
        return await Client.connect(
            self.address, namespace=self.namespace, tls=self.client_tls if tls is None else tls
        )


def _serve(request: pytest.FixtureRequest, server: TlsServer):
    server.start()
    yield server
    server.stop()
    if request.session.testsfailed == 0 and not os.environ.get("CHRONICLE_KEEP_TMP"):
        shutil.rmtree(server.tmp_dir, ignore_errors=True)


def _tmp(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"chronicle-e2e-{prefix}-"))


@pytest.fixture(scope="module")
def tls_server(request: pytest.FixtureRequest, certs: Certs):
    """TLS through start-dev's flags, no client certificates."""
    flags = ["--tls-cert-file", str(certs.path("server.pem")), "--tls-key-file", str(certs.path("server.key"))]
    yield from _serve(request, TlsServer(_tmp("tls"), certs.tls(), flags=flags))


@pytest.fixture(scope="module")
def mtls_server(request: pytest.FixtureRequest, certs: Certs):
    """mTLS through a config file: clients must present a certificate of the client CA."""
    table = (
        f'cert_file = "{certs.path("server.pem")}"\nkey_file = "{certs.path("server.key")}"\n'
        f'client_ca_file = "{certs.path("client-ca.pem")}"'
    )
    yield from _serve(request, TlsServer(_tmp("mtls"), certs.tls("client"), config=table))


# -- a workflow to run -----------------------------------------------------------------------


@activity.defn
async def shout(text: str) -> str:
    return text.upper()


@workflow.defn
class Shout:
    @workflow.run
    async def run(self, text: str) -> str:
        return await workflow.execute_activity(shout, text, start_to_close_timeout=timedelta(seconds=10))


async def run_workflow(client: Client) -> str:
    queue = unique("tls")
    async with new_worker(client, queue, workflows=[Shout], activities=[shout]):
        return await client.execute_workflow(
            Shout.run, "over tls", id=unique("tls-wf"), task_queue=queue,
            execution_timeout=timedelta(seconds=30),
        )


def peer_certificate(address: str, ca: Path) -> dict:
    """A fresh TLS connection's view of the server: its certificate (as Python's ssl module
    reads it, verified against `ca` for localhost) and the protocol ALPN chose."""
    host, port = address.rsplit(":", 1)
    context = ssl.create_default_context(cafile=str(ca))
    context.set_alpn_protocols(["h2"])
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            cert = tls.getpeercert()
            assert tls.selected_alpn_protocol() == "h2"
    subject = dict(item[0] for item in cert["subject"])
    return {"cn": subject["commonName"], "serial": cert["serialNumber"]}


def refused(coro) -> BaseException:
    """The error a connection attempt that must fail ends with, quickly."""
    async def attempt() -> BaseException:
        try:
            await asyncio.wait_for(coro, CONNECT_TIMEOUT_S)
        except asyncio.TimeoutError:
            raise AssertionError("the connection attempt hung instead of failing") from None
        except Exception as e:  # noqa: BLE001 - the SDK raises RuntimeError for a failed connect
            return e
        raise AssertionError("the connection was accepted")
    return attempt()


# -- tests -----------------------------------------------------------------------------------


async def test_the_sdk_runs_a_workflow_over_tls(tls_server: TlsServer, certs: Certs) -> None:
    client = await tls_server.client()
    assert await run_workflow(client) == "OVER TLS"
    # By name, as a client outside the machine would connect.
    named = TLSConfig(server_root_ca_cert=certs.read("ca.pem"), domain="localhost")
    client = await tls_server.client(named)
    assert await run_workflow(client) == "OVER TLS"
    assert peer_certificate(tls_server.address, certs.path("ca.pem"))["cn"] == "localhost"


async def test_the_cli_lists_workflows_over_tls(tls_server: TlsServer, certs: Certs) -> None:
    client = await tls_server.client()
    queue = unique("tls-cli")
    handle = await client.start_workflow(Shout.run, "x", id=unique("tls-cli-wf"), task_queue=queue)
    cli = Cli(tls_server)
    ca = str(certs.path("ca.pem"))
    listed = await cli.json("workflow", "list", "--tls-ca-path", ca, "--tls-server-name", "localhost")
    assert handle.id in [w["execution"]["workflowId"] for w in listed]
    described = await cli.json("operator", "namespace", "describe", "-n", "default", "--tls-ca-path", ca)
    assert described["namespaceInfo"]["name"] == "default"
    plaintext = await cli.fail("workflow", "list", timeout=CONNECT_TIMEOUT_S * 2)
    assert "TLS" in plaintext.stderr, plaintext.describe()
    # TLS, but trusting only the system's CAs: the server's certificate is not trusted.
    untrusted = await cli.fail("workflow", "list", "--tls", timeout=CONNECT_TIMEOUT_S * 2)
    assert "certificate" in untrusted.stderr, untrusted.describe()
    await handle.terminate()


async def test_plaintext_and_stalled_clients_are_refused_without_holding_up_others(
    tls_server: TlsServer,
) -> None:
    host, port = tls_server.address.rsplit(":", 1)
    stalled = socket.create_connection((host, int(port)), timeout=5)
    try:
        error = await refused(tls_server.client(tls=False))
        assert "connect" in str(error).lower() or "transport" in str(error).lower(), error
        # An HTTP/2 client without TLS is answered with at most a TLS alert, then the end.
        with socket.create_connection((host, int(port)), timeout=5) as plain:
            plain.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            reply = b""
            while chunk := plain.recv(4096):
                reply += chunk
            assert reply[:1] in (b"", b"\x15"), reply
        # The stalled connection, still open, holds up no one.
        client = await tls_server.client()
        assert await run_workflow(client) == "OVER TLS"
    finally:
        stalled.close()
    assert tls_server.running


async def test_mutual_tls_takes_only_clients_of_the_client_ca(mtls_server: TlsServer, certs: Certs) -> None:
    await refused(mtls_server.client(certs.tls()))
    await refused(mtls_server.client(certs.tls("stranger")))
    client = await mtls_server.client(certs.tls("client"))
    assert await run_workflow(client) == "OVER TLS"
    cli = Cli(mtls_server)
    ca = str(certs.path("ca.pem"))
    with_cert = [
        "--tls-ca-path", ca, "--tls-cert-path", str(certs.path("client.pem")),
        "--tls-key-path", str(certs.path("client.key")),
    ]
    await cli.json("workflow", "list", *with_cert)
    await cli.fail("workflow", "list", "--tls-ca-path", ca, timeout=CONNECT_TIMEOUT_S * 2)


@pytest.fixture(scope="module")
def mtls_authorized_server(request: pytest.FixtureRequest, certs: Certs):
    """mTLS with authorization on: the client certificate's name (CN `worker-1`) is mapped to
    a role by `[auth.tls_identities]`; no JWT is involved."""
    table = (
        f'cert_file = "{certs.path("server.pem")}"\nkey_file = "{certs.path("server.key")}"\n'
        f'client_ca_file = "{certs.path("client-ca.pem")}"\n'
        '[auth]\nenabled = true\n[auth.tls_identities]\n"worker-1" = ["default:read"]'
    )
    yield from _serve(request, TlsServer(_tmp("mtls-auth"), certs.tls("client"), config=table))


async def test_an_mtls_identity_maps_to_its_role(mtls_authorized_server: TlsServer) -> None:
    client = await mtls_authorized_server.client()
    assert [w async for w in client.list_workflows()] is not None  # read: allowed
    with pytest.raises(RPCError) as refused_start:
        await client.start_workflow(Shout.run, "no", id=unique("tls-auth"), task_queue=unique("q"))
    assert refused_start.value.status == RPCStatusCode.PERMISSION_DENIED
    assert "worker-1" in refused_start.value.message, refused_start.value.message


@pytest.fixture
def rotating_server(request: pytest.FixtureRequest, certs: Certs):
    """TLS from files of its own (tls.pem, tls.key in its directory), looked at every second."""
    tmp = _tmp("rotate")
    shutil.copy(certs.path("server.pem"), tmp / "tls.pem")
    shutil.copy(certs.path("server.key"), tmp / "tls.key")
    table = f'cert_file = "{tmp / "tls.pem"}"\nkey_file = "{tmp / "tls.key"}"\nreload_secs = 1'
    yield from _serve(request, TlsServer(tmp, certs.tls(), config=table))


async def test_a_certificate_rotated_in_place_is_served_without_a_restart(
    rotating_server: TlsServer, certs: Certs
) -> None:
    server = rotating_server
    cert, key = server.tmp_dir / "tls.pem", server.tmp_dir / "tls.key"
    ca = certs.path("ca.pem")

    async def connect_and_read_log() -> tuple[dict, str]:
        # The files are looked at when a connection comes.
        seen = await asyncio.to_thread(peer_certificate, server.address, ca)
        return seen, server.log_path.read_text()

    before = peer_certificate(server.address, ca)
    assert before["cn"] == "localhost"
    old_client = await server.client()

    # Written in place, the key first: in between, the pair does not match and the old
    # certificate stays in use.
    key.write_bytes(certs.read("rotated.key"))
    cert.write_bytes(certs.read("rotated.pem"))
    after, _ = await eventually(
        connect_and_read_log,
        lambda seen: seen[0]["cn"] == "localhost-rotated",
        what="a new connection to see the rotated certificate", timeout=10,
    )
    assert after["serial"] != before["serial"]
    assert await run_workflow(await server.client()) == "OVER TLS"
    assert await run_workflow(old_client) == "OVER TLS"

    # A broken file is reported, and the certificate in use is kept.
    cert.write_text("not a certificate\n")
    await eventually(
        connect_and_read_log,
        lambda seen: "no PEM certificate" in seen[1],
        what="the broken certificate file to be reported", timeout=10,
    )
    assert peer_certificate(server.address, ca)["serial"] == after["serial"]
    assert await run_workflow(await server.client()) == "OVER TLS"
    assert server.running


# -- TLS to the database ---------------------------------------------------------------------

# Debian's PostgreSQL serves this self-signed certificate, for localhost, out of the box.
SNAKEOIL = Path("/etc/ssl/certs/ssl-cert-snakeoil.pem")


def _postgres_with_snakeoil() -> str | None:
    """Why the local PostgreSQL cannot show verified TLS, or None when it can."""
    try:
        url = urlparse(backends.admin_url("postgres"))
        ssl_on = backends.sql("postgres", "SHOW ssl").strip()
        cert = backends.sql("postgres", "SHOW ssl_cert_file").strip()
    except (OSError, subprocess.SubprocessError) as e:
        return f"PostgreSQL unreachable: {e}"
    if url.hostname not in ("127.0.0.1", "localhost"):
        return f"PostgreSQL at {url.hostname}, not this machine's"
    if ssl_on != "on" or cert != str(SNAKEOIL) or not SNAKEOIL.exists():
        return f"PostgreSQL serves no TLS with {SNAKEOIL} (ssl={ssl_on}, cert={cert})"
    return None


class PostgresTlsNode(ServerHandle):
    """A node on its own PostgreSQL database, `persistence` lines added to its config."""

    def __init__(self, tmp_dir: Path, dsn: str, persistence: str) -> None:
        super().__init__("chronicle", tmp_dir)
        self.backend = "sqlite"  # the database is made by the test, not by ServerHandle
        self._config_path.write_text(
            f'[server]\nip = "127.0.0.1"\nport = {self.port}\n'
            f'[persistence]\nbackend = "postgres"\ndsn = "{dsn}"\n{persistence}\n'
        )

    def command(self) -> list[str]:
        return [_chronicle_bin(), "server", "start", "--config", str(self._config_path)]

    def migrate(self) -> subprocess.CompletedProcess:
        return subprocess.run(
            [_chronicle_bin(), "schema", "migrate", "--config", str(self._config_path)],
            capture_output=True, text=True, timeout=60,
        )


@pytest.fixture
def postgres_database():
    reason = _postgres_with_snakeoil()
    if reason:
        pytest.skip(reason)
    name, dsn = backends.create_database("postgres")
    yield name, urlparse(dsn)
    backends.drop_database("postgres", name)


async def test_a_node_reaches_postgres_over_verified_tls(postgres_database) -> None:
    name, dsn = postgres_database
    verify = f'tls_mode = "verify-full"\ntls_ca_file = "{SNAKEOIL}"'
    by_ip = dsn._replace(netloc=dsn.netloc.replace("localhost", "127.0.0.1")).geturl()
    # The certificate names localhost only: by address, verify-full refuses it.
    refusing = PostgresTlsNode(_tmp("pg-tls-ip"), by_ip, verify)
    refused = refusing.migrate()
    shutil.rmtree(refusing.tmp_dir, ignore_errors=True)
    assert refused.returncode != 0
    assert "not valid for name" in refused.stderr, refused.stderr

    by_name = dsn._replace(netloc=dsn.netloc.replace("127.0.0.1", "localhost")).geturl()
    node = PostgresTlsNode(_tmp("pg-tls"), by_name, verify)
    migrated = node.migrate()
    assert migrated.returncode == 0, migrated.stderr
    node.start()
    try:
        client = await node.client()
        assert await run_workflow(client) == "OVER TLS"
        connections = backends.sql(
            "postgres",
            "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) "
            f"WHERE a.datname = '{name}'",
        ).split()
        assert connections and set(connections) == {"t"}, connections
    finally:
        node.stop()
        shutil.rmtree(node.tmp_dir, ignore_errors=True)


# -- a cluster over TLS ------------------------------------------------------------------------


@pytest.fixture
def tls_cluster(certs: Certs):
    """Two nodes on one database, each port under mTLS; the nodes call each other over TLS
    with the client certificate (`[cluster.tls]`)."""
    from test_cluster import EXAMPLE, Node

    kind = backends.backend()
    if kind == "sqlite":
        pytest.skip("a cluster runs on PostgreSQL or MySQL (CHRONICLE_TEST_BACKEND)")
    name, dsn = backends.create_database(kind)
    directory = _tmp("tls-cluster")
    tls_tables = (
        f'\n[server.tls]\ncert_file = "{certs.path("server.pem")}"\nkey_file = "{certs.path("server.key")}"\n'
        f'client_ca_file = "{certs.path("client-ca.pem")}"\n'
        f'[cluster.tls]\nca_file = "{certs.path("ca.pem")}"\ncert_file = "{certs.path("client.pem")}"\n'
        f'key_file = "{certs.path("client.key")}"\n'
    )
    nodes = []
    for i in (1, 2):
        node = Node(f"node-{i}", directory, kind, dsn)
        node.config = directory / f"node-{i}.toml"
        node.config.write_text((EXAMPLE / f"node-{i}.toml").read_text() + tls_tables)
        nodes.append(node)
    migrate = [_chronicle_bin(), "schema", "migrate", "--config", str(nodes[0].config)]
    subprocess.run(migrate, check=True, capture_output=True, timeout=60, env=nodes[0].env)
    for node in nodes:
        node.start()
    for node in nodes:
        node.wait_ready()
    yield nodes
    for node in nodes:
        node.stop()
    backends.drop_database(kind, name)
    shutil.rmtree(directory, ignore_errors=True)


async def test_a_cluster_under_mtls_forwards_between_its_nodes(tls_cluster, certs: Certs) -> None:
    a, b = tls_cluster
    connect = lambda node: Client.connect(node.address, tls=certs.tls("client"))  # noqa: E731
    client_a, client_b = await connect(a), await connect(b)
    await asyncio.sleep(1.0)  # both are members before the split is relied on
    queue = unique("tls-cluster")
    async with new_worker(client_b, queue, workflows=[Shout], activities=[shout]):
        results = [
            await client_a.execute_workflow(
                Shout.run, f"n{i}", id=unique("tls-cluster"), task_queue=queue,
                execution_timeout=timedelta(seconds=30),
            )
            for i in range(6)
        ]
    assert results == [f"N{i}" for i in range(6)]
    # Both nodes own shards, so calls went from one to the other, over TLS.
    assert a.owned_shards() and b.owned_shards()
    assert "calls forwarded between the members will fail" not in a.tail() + b.tail()
