"""Authorization with bearer JWTs, end to end with the Python SDK.

Keys are made by the test (`openssl`), published as a JWKS file and used to sign tokens;
the server is told of them with CHRONICLE_AUTH_* (the `[auth]` section). Roles follow
Temporal's default claim mapper (`permissions: ["namespace:role"]`): readers read, workers
poll and respond, writers start and terminate, admins manage namespaces, `system:admin`
everywhere. Denials are PERMISSION_DENIED and say what was missing.

Chronicle only: `temporal server start-dev` has no flag to turn its JWT authorizer on.
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from google.protobuf.duration_pb2 import Duration

from conftest import _dispose, _start_server
from helpers import new_worker, unique

AUDIENCE = "chronicle-e2e"

pytestmark = pytest.mark.skipif(
    __import__("os").environ.get("CHRONICLE_TEST_TARGET") == "reference",
    reason="the reference dev server cannot enable its JWT authorizer",
)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Keys:
    """An RSA key pair (openssl) and tokens signed with it."""

    def __init__(self, directory: Path, kid: str) -> None:
        self.kid = kid
        self.private = directory / f"{kid}.pem"
        subprocess.run(["openssl", "genrsa", "-out", str(self.private), "2048"], check=True, capture_output=True)
        modulus = subprocess.run(
            ["openssl", "rsa", "-in", str(self.private), "-noout", "-modulus"],
            check=True, capture_output=True, text=True,
        ).stdout.strip().split("=", 1)[1]
        self.jwk = {"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig", "n": _b64(bytes.fromhex(modulus)), "e": "AQAB"}

    def token(self, claims: dict, *, kid: str | None = None) -> str:
        now = int(time.time())
        body = {"sub": "e2e", "aud": AUDIENCE, "iat": now, "exp": now + 600, **claims}
        header = {"alg": "RS256", "typ": "JWT", "kid": kid or self.kid}
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(body).encode())}"
        signature = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", str(self.private)],
            input=signing_input.encode(), check=True, capture_output=True,
        ).stdout
        return f"{signing_input}.{_b64(signature)}"


@workflow.defn
class Greets:
    @workflow.run
    async def run(self, name: str) -> str:
        return f"hello {name}"


def _auth_server(request, tmp_path: Path, keys: Keys, **settings: str):
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [keys.jwk]}))
    env = {
        "CHRONICLE_AUTH_ENABLED": "true",
        "CHRONICLE_AUTH_JWKS_FILE": json.dumps(str(jwks)),
        "CHRONICLE_AUTH_AUDIENCE": json.dumps(AUDIENCE),
        **{f"CHRONICLE_AUTH_{k.upper()}": json.dumps(v) for k, v in settings.items()},
    }
    handle = _start_server("auth", env=env)
    request.addfinalizer(lambda: _dispose(handle, keep_dir=request.session.testsfailed > 0))
    return handle


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    return Keys(tmp_path, "key-1")


@pytest.fixture
def auth_server(request, tmp_path, keys):
    return _auth_server(request, tmp_path, keys)


async def _client(server, token: str | None, namespace: str = "default") -> Client:
    metadata = {"authorization": f"Bearer {token}"} if token else {}
    return await Client.connect(server.address, namespace=namespace, rpc_metadata=metadata)


async def _denied(call) -> RPCError:
    with pytest.raises(RPCError) as refused:
        await call
    assert refused.value.status == RPCStatusCode.PERMISSION_DENIED, refused.value
    return refused.value


async def _list(client: Client) -> list:
    return [w async for w in client.list_workflows()]


async def test_roles_decide_what_each_caller_may_do(auth_server, keys):
    admin = await _client(auth_server, keys.token({"permissions": ["system:admin"]}))
    await admin.workflow_service.register_namespace(
        RegisterNamespaceRequest(namespace="other", workflow_execution_retention_period=Duration(seconds=86400))
    )
    anonymous = await _client(auth_server, None)  # connects: GetSystemInfo stays open
    await _denied(_list(anonymous))

    reader = await _client(auth_server, keys.token({"permissions": ["default:read"]}))
    await _list(reader)
    task_queue = unique("auth")
    refused = await _denied(reader.start_workflow(Greets.run, "r", id=unique("auth"), task_queue=task_queue))
    assert "default" in refused.message and "write" in refused.message, refused.message

    writer = await _client(auth_server, keys.token({"permissions": ["default:write"]}))
    worker_client = await _client(auth_server, keys.token({"permissions": ["default:worker"]}))
    async with new_worker(worker_client, task_queue, workflows=[Greets]):
        handle = await writer.start_workflow(Greets.run, "w", id=unique("auth"), task_queue=task_queue)
        assert await handle.result() == "hello w"
    running = await writer.start_workflow(Greets.run, "x", id=unique("auth"), task_queue=unique("idle"))
    await _denied(worker_client.get_workflow_handle(running.id).terminate("no"))
    await running.terminate("a writer may")

    writer_in_other = await _client(
        auth_server, keys.token({"permissions": ["default:write"]}), namespace="other"
    )
    refused = await _denied(
        writer_in_other.start_workflow(Greets.run, "o", id=unique("auth"), task_queue=task_queue)
    )
    assert "other" in refused.message, refused.message
    await _denied(writer.workflow_service.register_namespace(RegisterNamespaceRequest(namespace="third")))


async def test_bad_tokens_are_denied(auth_server, keys, tmp_path):
    permissions = {"permissions": ["system:admin"]}
    now = int(time.time())
    impostor = Keys(tmp_path, "impostor")
    bad = {
        "expired": keys.token({**permissions, "exp": now - 3600, "iat": now - 7200}),
        "wrong audience": keys.token({**permissions, "aud": "someone-else"}),
        "signed by another key under our kid": impostor.token(permissions, kid=keys.kid),
        "unknown kid": impostor.token(permissions),
        "not a jwt": "not-a-token",
    }
    for what, token in bad.items():
        client = await _client(auth_server, token)
        refused = await _denied(_list(client))
        assert refused.message, what
    good = await _client(auth_server, keys.token(permissions))
    await _list(good)


@pytest.fixture
def nested_server(request, tmp_path, keys):
    return _auth_server(
        request,
        tmp_path,
        keys,
        permissions_claim="realm.roles",
        permission_pattern=r"^temporal-(?P<namespace>[a-z]+)-(?P<role>[a-z]+)$",
        subject_claim="user.email",
    )


async def test_a_nested_claim_with_a_custom_pattern_is_honoured(nested_server, keys):
    claims = {"realm": {"roles": ["temporal-default-read", "unrelated-role"]}, "user": {"email": "a@example.com"}}
    reader = await _client(nested_server, keys.token(claims))
    await _list(reader)
    refused = await _denied(reader.start_workflow(Greets.run, "n", id=unique("auth"), task_queue=unique("q")))
    assert "a@example.com" in refused.message, refused.message
    # Temporal's default claim is not read under this mapping.
    flat = await _client(nested_server, keys.token({"permissions": ["default:read"]}))
    await _denied(_list(flat))
