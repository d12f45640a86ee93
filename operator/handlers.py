"""kopf handlers: thin adapters from kopf's callbacks to the reconcile/webhook modules.

Import this module only after `config.CONFIG` is final: timer intervals are read at import time.
"""

from __future__ import annotations

import logging
import ssl
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, cast

import kopf
from kubernetes import client
from kubernetes import config as kube_config
from kubernetes.client.exceptions import ApiException

from . import (
    claim_watch,
    claims,
    coalesce,
    conditions,
    metrics,
    naming,
    reconcile,
    runtime_health,
    webhook,
    webhook_cert,
)
from .claimant_index import ClaimantIndex
from .config import CONFIG, WebhookConfig
from .events import EventSpec
from .kube import Kube, KubeClaimBackend
from .login import login_with_bounded_pool
from .rebalance import Rebalancer

GROUP, VERSION, PLURAL = naming.API_GROUP, naming.API_VERSION, naming.PLURAL
log = logging.getLogger("sekoia_intel_operator")

_state: dict[str, Any] = {}
#: How often every resource checks its claim again, holders as often as waiters (the Lease watch and
#: the hand-over on deletion act at once; this covers whatever the operator missed).
WAITER_RECHECK_SECONDS = 30.0
#: Watch events of one Sekoia host within this time make one rebalance of its budget.
BUDGET_COALESCE_SECONDS = 2.0


def _kube() -> Kube:
    return _state["kube"]


def _secrets_grant() -> str | None:
    """The RoleBinding command that lets this operator read Secrets in a namespace ({namespace})."""
    ident = CONFIG.identity
    if not (ident.namespace and ident.service_account and ident.secrets_cluster_role):
        return None
    return (
        f"kubectl -n {{namespace}} create rolebinding sekoia-intel-sync-secrets "
        f"--clusterrole={ident.secrets_cluster_role} "
        f"--serviceaccount={ident.namespace}:{ident.service_account}"
    )


def _settings() -> reconcile.Settings:
    return reconcile.Settings(
        claims_namespace=CONFIG.claims_namespace,
        runtime_image=CONFIG.runtime_image,
        allowlists=CONFIG.allowlists,
        pod_defaults=CONFIG.pod_defaults,
        network_policy=CONFIG.network_policy,
        secrets_grant=_secrets_grant(),
    )


def build_api_client() -> client.ApiClient:
    """An API client from the in-cluster identity, else from KUBECONFIG / ~/.kube/config."""
    configuration = client.Configuration()
    try:
        kube_config.load_incluster_config(client_configuration=configuration)
    except kube_config.ConfigException:
        kube_config.load_kube_config(client_configuration=configuration)
    # One connection per worker thread, or urllib3 discards connections under load.
    configuration.connection_pool_maxsize = CONFIG.max_workers + 4
    return client.ApiClient(configuration)


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    """kopf settings and the shared API client."""
    settings.persistence.finalizer = f"{naming.API_GROUP}/finalizer"
    # kopf's own "handler succeeded" events would drown ours; failures still become Events.
    settings.posting.level = logging.WARNING
    # Watches that die silently are kopf's known failure mode: bound every stream and request.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 30
    settings.networking.request_timeout = 60
    settings.execution.max_workers = CONFIG.max_workers
    api_client = build_api_client()
    if CONFIG.webhook is not None:
        wh = CONFIG.webhook
        certfile, keyfile = wh.certfile, wh.keyfile
        if wh.cert_secret:
            keeper = _cert_keeper(api_client, wh)
            keeper.sync()  # before the server starts: it needs the files
            _state["cert_keeper"] = keeper.start()
            certfile, keyfile = str(keeper.certfile), str(keeper.keyfile)
        settings.admission.server = kopf.WebhookServer(
            addr=wh.addr,
            port=wh.port,
            host=wh.host,
            certfile=certfile,
            pkeyfile=keyfile,
            cafile=wh.cafile,
            # With a client CA, the TLS handshake itself refuses callers without a certificate it
            # signed: only the API server (configured with that client certificate) gets an answer.
            verify_mode=ssl.CERT_REQUIRED if wh.client_cafile else None,
            verify_cafile=wh.client_cafile,
        )
        if wh.managed_config:
            settings.admission.managed = wh.managed_config
    _state["kube"] = Kube(api_client, namespaces=CONFIG.namespaces, request_timeout=CONFIG.request_timeout)
    _state["kube"].claimant_index = ClaimantIndex()
    _state["lease_watch"] = claim_watch.LeaseWatcher(
        _state["kube"], CONFIG.claims_namespace, _claim_restored
    ).start()
    if CONFIG.budget is not None:
        # A rebalance runs BUDGET_COALESCE_SECONDS after the first event of a host, by which time
        # the initial listing (with the shares a previous operator published) is normally in.
        _state["budget"] = Rebalancer(CONFIG.budget, _write_budget, delay=BUDGET_COALESCE_SECONDS)


def _write_budget(namespace: str, name: str, budget: dict[str, Any] | None) -> None:
    try:
        _kube().patch_sync_status(namespace, name, {"budget": budget})
    except ApiException as exc:
        if exc.status != 404:  # gone meanwhile: its DELETED event rebalances again
            raise


def _cert_keeper(api_client: client.ApiClient, wh: WebhookConfig) -> webhook_cert.CertKeeper:
    """The keeper of the self-made webhook certificate (--webhook-cert-secret)."""
    core = client.CoreV1Api(api_client)
    hosts: list[str] = []
    owner = None
    if wh.service:
        hosts += webhook_cert.service_hosts(wh.service, wh.cert_namespace)
        svc = core.read_namespaced_service(wh.service, wh.cert_namespace)
        # Owned by the Service: uninstalling the chart deletes the Secret too.
        owner = {"apiVersion": "v1", "kind": "Service", "name": wh.service, "uid": svc.metadata.uid}
    if wh.host and wh.host not in hosts:
        hosts.append(wh.host)
    assert wh.cert_secret is not None
    return webhook_cert.CertKeeper(
        core=core,
        admission=client.AdmissionregistrationV1Api(api_client),
        namespace=wh.cert_namespace,
        secret_name=wh.cert_secret,
        hosts=hosts,
        directory=Path(tempfile.mkdtemp(prefix="sis-webhook-")),
        config_name=wh.ca_injection_config,
        owner=owner,
    )


@kopf.on.cleanup()
def stop_lease_watch(**_: Any) -> None:
    """End the Lease watch thread, the certificate keeper's and the budget's timer with the operator."""
    watcher = _state.get("lease_watch")
    if watcher is not None:
        watcher.stop()
    keeper = _state.get("cert_keeper")
    if keeper is not None:
        keeper.stop()
    rebalancer = _state.get("budget")
    if rebalancer is not None:
        rebalancer.stop()


def _claim_restored(result: claims.RestoreResult) -> None:
    """A claim was rewritten: every claimant reconciles now, so the old holder stops its runtime and
    the new one starts it once that is done."""
    metrics.CLAIM_HANDOVERS.inc()
    for claimant in result.claimants:
        if not claimant.deleting:
            _kube().poke(claimant.namespace, claimant.name, "collection claim restored")


@kopf.on.login()
async def login(**kwargs: Any) -> kopf.AiohttpSession | None:
    """Authenticate kopf as its default would, through a bounded connection pool."""
    return await login_with_bounded_pool(CONFIG.namespaces, **kwargs)


def _post(body: Mapping[str, Any], events: list[EventSpec]) -> None:
    for event in events:
        kopf.event(cast(kopf.Body, body), type=event.type, reason=event.reason, message=event.message)
        metrics.EVENTS.labels(event.type, event.reason).inc()


def _guarded(trigger: str, fn: Callable[[], reconcile.Outcome]) -> reconcile.Outcome:
    """Run one reconciliation; API hiccups become kopf retries instead of crashes."""
    started = time.monotonic()
    try:
        outcome = fn()
    except claims.ClaimConflict as exc:
        metrics.RECONCILES.labels(trigger, "retry").inc()
        raise kopf.TemporaryError(str(exc), delay=1) from None
    except claims.ClaimsNamespaceMissing as exc:
        metrics.RECONCILES.labels(trigger, "error").inc()
        raise kopf.TemporaryError(str(exc), delay=30) from None
    except ApiException as exc:
        metrics.RECONCILES.labels(trigger, "error").inc()
        # Only status and reason: the body of an API error may echo the object that was sent.
        raise kopf.TemporaryError(f"Kubernetes API error {exc.status} {exc.reason}", delay=5) from None
    finally:
        metrics.RECONCILE_SECONDS.observe(time.monotonic() - started)
    metrics.RECONCILES.labels(trigger, "ok").inc()
    return outcome


def _report(body: Mapping[str, Any], outcome: reconcile.Outcome) -> None:
    _post(body, outcome.events)
    for successor in outcome.pokes:
        _kube().poke(successor.namespace, successor.name, "collection claim handed over")
    if outcome.retry_after is not None:
        raise kopf.TemporaryError(
            "waiting for another runtime of the collection to stop", delay=outcome.retry_after
        )


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL)
def reconcile_sync(body: kopf.Body, reason: str, **_: Any) -> None:
    """Any change of the resource (or operator start): converge everything."""
    outcome = _guarded(str(reason), lambda: reconcile.reconcile(_kube(), _settings(), body))
    _report(body, outcome)


@kopf.timer(
    GROUP,
    VERSION,
    PLURAL,
    interval=min(CONFIG.resync_interval, WAITER_RECHECK_SECONDS),
    initial_delay=min(CONFIG.resync_interval, WAITER_RECHECK_SECONDS),
    when=lambda meta, **_: not meta.get("deletionTimestamp"),
)
def resync(body: kopf.Body, status: kopf.Status, **_: Any) -> None:
    """Safety net: every resource re-checks its claim at every tick (a holder that lost it stops its
    runtime); a holder that still holds it re-converges everything every resync interval."""
    holds = any(
        c.get("type") == "CollectionClaimed" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    meta = body["metadata"]
    due = reconcile.resync_due(meta["namespace"], meta["name"], holds, CONFIG.resync_interval)
    if not due:
        # Between full re-checks: one Lease read confirms the claim, and one `get` of the referenced
        # Secret notices a rotation (or a removed opt-in label) without watching every Secret.
        try:
            quiet = reconcile.still_holds(_kube(), _settings(), body) and not reconcile.credentials_changed(
                _kube(), _settings(), body
            )
        except ApiException as exc:
            raise kopf.TemporaryError(f"Kubernetes API error {exc.status} {exc.reason}", delay=5) from None
        if quiet:
            return
    outcome = _guarded("timer", lambda: reconcile.reconcile(_kube(), _settings(), body))
    _report(body, outcome)


@kopf.on.delete(GROUP, VERSION, PLURAL)
def finalize_sync(body: kopf.Body, **_: Any) -> None:
    """Stop the runtime, then hand the collection to the oldest waiting resource."""
    try:
        done, successor = reconcile.finalize(_kube(), _settings(), body)
    except (ApiException, claims.ClaimConflict) as exc:
        raise kopf.TemporaryError(
            f"cannot release the collection claim yet: {type(exc).__name__}", delay=2
        ) from None
    if not done:
        raise kopf.TemporaryError(
            "waiting for the runtime Pods to stop before handing the claim over", delay=2
        )
    if successor is not None:
        metrics.CLAIM_HANDOVERS.inc()
        _kube().poke(successor.namespace, successor.name, "collection claim handed over")
        _post(
            body,
            [EventSpec("Normal", "CollectionHandedOver", f"collection handed over to {successor.identity}")],
        )
    reconcile.forget(body["metadata"]["namespace"], body["metadata"]["name"])


@kopf.on.event(GROUP, VERSION, PLURAL)
def sync_seen(type: str | None, body: kopf.Body, **_: Any) -> None:
    """Every event of a resource feeds the claimant index. A resource that vanished (also when its
    finalizer was removed by hand, so that its own deletion handler never ran) gives its collection
    to the rightful claimant now rather than at the next tick.
    """
    collection = reconcile.collection_of(body)
    index = _kube().claimant_index
    if index is not None:
        index.observe(type, body, collection)
    rebalancer = _state.get("budget")
    if rebalancer is not None:
        # Claims, suspensions, deletions and the runtimes' backlog reports all arrive here.
        rebalancer.observe(type, dict(body))
    if type != "DELETED" or collection is None:
        return
    try:
        claim_watch.handle(_kube(), CONFIG.claims_namespace, collection, _claim_restored)
    except (ApiException, claims.ClaimConflict) as exc:
        # The timers of the remaining claimants re-check soon; this only makes it immediate.
        log.warning("restoring the claim on collection %s failed: %s", collection, exc.__class__.__name__)


# --- runtime observers: Deployment/Pod changes refresh the owner's runtime conditions -----------------


_runtime_refreshes = coalesce.Coalescer()


def _refresh_and_report(namespace: str, sync_name: str) -> None:
    outcome = reconcile.refresh_runtime(_kube(), namespace, sync_name)
    body = _kube().get_sync(namespace, sync_name) if outcome.events else None
    if body is not None:
        _post(body, outcome.events)


async def _refresh_owner(event_type: str | None, meta: Mapping[str, Any], namespace: str | None) -> None:
    if event_type is None or namespace is None:
        return  # the initial listing: resumed reconciliations already cover it
    sync_name = (meta.get("annotations") or {}).get(naming.ANNOTATION_SYNC_NAME)
    if not sync_name:
        return
    try:
        await _runtime_refreshes.trigger(
            (namespace, sync_name), lambda: _refresh_and_report(namespace, sync_name)
        )
    except ApiException as exc:
        # Event handlers are not retried: the next change, or the periodic resync, refreshes again.
        log.warning(
            "refreshing the runtime status of %s/%s failed: Kubernetes API error %s %s",
            namespace,
            sync_name,
            exc.status,
            exc.reason,
        )


_MANAGED: dict[str, Any] = {
    naming.LABEL_MANAGED_BY: naming.MANAGED_BY,
    naming.LABEL_UID: kopf.PRESENT,
}


@kopf.on.event("apps", "v1", "deployments", labels=_MANAGED)
async def deployment_changed(type: str | None, meta: kopf.Meta, namespace: str | None, **_: Any) -> None:
    """Rollout progress of a runtime Deployment."""
    await _refresh_owner(type, meta, namespace)


def _pod_needs_attention(status: kopf.Status, **_: Any) -> bool:
    return runtime_health.pod_needs_attention(status)


@kopf.on.event("", "v1", "pods", labels=_MANAGED, when=_pod_needs_attention)
async def pod_changed(type: str | None, meta: kopf.Meta, namespace: str | None, **_: Any) -> None:
    """Failures, restarts and scheduling problems of a runtime Pod."""
    await _refresh_owner(type, meta, namespace)


def _blocked_not_reflected(status: kopf.Status, **_: Any) -> bool:
    return conditions.blocked_not_reflected(status)


@kopf.on.event(GROUP, VERSION, PLURAL, when=_blocked_not_reflected)
async def runtime_reported_blocked(
    type: str | None, name: str | None, namespace: str | None, **_: Any
) -> None:
    """The runtime wrote (or cleared) `status.progress.blocked`: Sekoia acknowledges nothing. Only
    the status changed, which kopf's update handlers ignore; the conditions follow here."""
    if type is None or namespace is None or name is None:
        return  # the initial listing: resumed reconciliations already cover it
    try:
        await _runtime_refreshes.trigger((namespace, name), lambda: _refresh_and_report(namespace, name))
    except ApiException as exc:
        log.warning(
            "refreshing the status of %s/%s failed: Kubernetes API error %s %s",
            namespace,
            name,
            exc.status,
            exc.reason,
        )


# --- admission -----------------------------------------------------------------------------------------


def validate_sync(
    body: kopf.Body, uid: str, warnings: list[str], sslpeer: dict[str, Any], **kwargs: Any
) -> None:
    """Reject a collection already claimed by another resource and what the schema cannot express."""
    wh = CONFIG.webhook
    if wh is not None and wh.client_cafile and not webhook.client_allowed(sslpeer, wh.client_names):
        # The TLS layer already refused callers without a certificate from the CA; this refuses
        # other holders of such certificates (e.g. users with client certificates from the cluster CA).
        metrics.ADMISSION.labels("refused").inc()
        raise kopf.AdmissionError("this webhook only answers the Kubernetes API server", code=403)
    checks = webhook.checks_for(kwargs.get("operation"), kwargs.get("old"), body)
    if not checks.spec:
        metrics.ADMISSION.labels("allowed").inc()
        return
    backend = KubeClaimBackend(_kube())

    def claim_lookup(collection: str) -> tuple[str, str] | None:
        return claims.peek(backend, CONFIG.claims_namespace, collection)

    # The API server fills the uid before validating admission, so the holder may update itself.
    verdict = webhook.validate(
        dict(body.get("spec") or {}),
        uid=uid or None,
        claim_lookup=claim_lookup,
        allowlists=CONFIG.allowlists,
        default_image=CONFIG.runtime_image,
        check_claim=checks.claim,
    )
    warnings.extend(verdict.warnings)
    if verdict.errors:
        metrics.ADMISSION.labels("rejected").inc()
        raise kopf.AdmissionError("; ".join(verdict.errors), code=422)
    metrics.ADMISSION.labels("allowed").inc()


# kopf refuses to start with admission handlers but no server: register only when one is configured.
if CONFIG.webhook is not None:
    kopf.on.validate(GROUP, VERSION, PLURAL, id="validate", operations=["CREATE", "UPDATE"])(validate_sync)
