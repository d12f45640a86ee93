"""kopf's session: the default credentials, through a connection pool bounded above its streams."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import kopf
import pytest
import yaml
from kubernetes.config import kube_config
from sekoia_intel_operator import login


def test_limit_covers_every_watch_stream_plus_requests() -> None:
    assert login.connection_limit(None) == login.REQUEST_CONNECTIONS + login.STREAMS_PER_NAMESPACE
    three = login.connection_limit(["a", "b", "c"])
    assert three == login.REQUEST_CONNECTIONS + 3 * login.STREAMS_PER_NAMESPACE


@pytest.mark.parametrize("pattern", ["team-*", "!kube-system", "a,b", "ns?"])
def test_patterns_leave_the_pool_unbounded(pattern: str) -> None:
    # The number of matching namespaces, hence of streams, is unknown: a bound could starve them.
    assert login.connection_limit(["intel", pattern]) == 0


def test_login_uses_the_kubeconfig_and_bounds_the_pool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "c",
                        "cluster": {"server": "https://127.0.0.1:6443", "insecure-skip-tls-verify": True},
                    }
                ],
                "users": [{"name": "u", "user": {"token": "t0k3n"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u", "namespace": "intel"}}],
                "current-context": "x",
            }
        )
    )
    # The client reads $KUBECONFIG once, at import.
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)

    async def scenario() -> tuple[str, int, str | None]:
        result = await login.login_with_bounded_pool(
            ["intel", "ops"], logger=logging.getLogger("test"), settings=kopf.OperatorSettings()
        )
        assert isinstance(result, kopf.AiohttpSession)
        session = result.aiohttp_session
        try:
            return result.server, session.connector.limit, session.headers.get("Authorization")  # type: ignore[union-attr]
        finally:
            await session.close()

    server, limit, authorization = asyncio.run(scenario())
    assert server == "https://127.0.0.1:6443"
    assert limit == login.connection_limit(["intel", "ops"])
    assert authorization == "Bearer t0k3n"
