"""kopf's connection to the API server, with a bounded connection pool.

kopf's own session opens connections without limit: under a burst (hundreds of resources created at
once) every in-flight watch-event patch and Event post opens its own TLS connection, and each one
holds a 256 KiB read buffer in asyncio's SSL transport. Measured with tracemalloc during
`make bench-operator`: ~1,000 such buffers, 137 MB, over half of the operator's peak RSS. A bounded
pool queues those requests instead; the credentials are the same ones kopf's default login finds.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import aiohttp
import kopf

#: Requests kopf may have in flight besides its watch streams.
REQUEST_CONNECTIONS = 48
#: Watch streams kopf keeps open per served namespace: resources, Deployments, Pods, Secrets and
#: one spare (peering, or the namespace watch behind glob patterns).
STREAMS_PER_NAMESPACE = 5
_PATTERN_CHARACTERS = set("*?[!,")


def connection_limit(namespaces: Sequence[str] | None) -> int:
    """Size of kopf's connection pool; 0 (unbounded) when the namespaces are not known in advance.

    Every watch stream holds a connection for as long as it lives, so the pool must cover all of
    them with room to spare, or requests would wait behind streams that never end.
    """
    if namespaces and any(set(ns) & _PATTERN_CHARACTERS for ns in namespaces):
        return 0  # kopf patterns (globs, negations, lists): as many streams as matches, unknown here
    served = len(namespaces) if namespaces else 1
    return REQUEST_CONNECTIONS + STREAMS_PER_NAMESPACE * served


async def login_with_bounded_pool(
    namespaces: Sequence[str] | None, *, logger: Any, settings: kopf.OperatorSettings, **kwargs: Any
) -> kopf.AiohttpSession | None:
    """kopf's default login (in-cluster, else kubeconfig), served through a bounded session."""
    info = kopf.login_via_client(logger=logger, settings=settings, **kwargs)
    if info is None:
        return None
    with warnings.catch_warnings():
        # kopf deprecates the helper, not basic auth itself; None unless the kubeconfig has a password.
        warnings.simplefilter("ignore", DeprecationWarning)
        basic_auth = info.as_aiohttp_basic_auth()
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=connection_limit(namespaces), ssl=info.as_ssl_context()),
        headers=info.as_http_headers(),
        auth=basic_auth,
        trust_env=info.trust_env,
    )
    return kopf.AiohttpSession(
        server=info.server,
        default_namespace=info.default_namespace,
        priority=info.priority,
        expiration=info.expiration,
        aiohttp_session=session,
    )
