"""The pipeline workers on Kubernetes: a StatefulSet running `reporting stream`, the ConfigMap holding
the estate file, a headless Service (pod DNS names, metrics), a PodDisruptionBudget and, optionally, a
Prometheus-operator ServiceMonitor. Pure.

Why a StatefulSet and not a Deployment: each worker is a static member of the Kafka consumer group
(KIP-345) whose `group.instance.id` is its pod name, `<name>-stream-0` ... `<name>-stream-<N-1>`. A
StatefulSet gives those stable names and never runs two pods of one ordinal at once, so a restarted
worker rejoins as the same member within the session timeout and gets its partitions back without a
rebalance of the others. A Deployment's random pod names would leave a stale static member behind on
every rollout. The workers keep no local state (offsets live in the reporting database), so the
StatefulSet has no volume claims.
"""

from __future__ import annotations

from pipelines.deploy.secrets import Mount

ESTATE_KEY = "reporting.yaml"
STATE_DIR = "/var/lib/reporting"
"""REPORTING_STATE_DIR in the pods: an emptyDir for logs (the image's project folder may be read-only)."""


def instance_ids(stream_name: str, workers: int) -> list[str]:
    """The workers' `group.instance.id`s: their pod names (StatefulSet ordinals 0..N-1)."""
    return [f"{stream_name}-{i}" for i in range(workers)]


def estate_config_map(*, name: str, namespace: str, labels: dict, estate_text: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
            "data": {ESTATE_KEY: estate_text}}


def estate_volume(config_map: str) -> dict:
    return {"name": "estate", "configMap": {"name": config_map, "items": [{"key": ESTATE_KEY, "path": ESTATE_KEY}]}}


def estate_mount(estate_path: str) -> dict:
    """The estate file at `estate_path` in the image's project folder (subPath: the folder's connector,
    projection, contract and dbt files stay visible, and relative paths in the estate resolve there)."""
    return {"name": "estate", "mountPath": estate_path, "subPath": ESTATE_KEY, "readOnly": True}


def stream_resources(*, name: str, namespace: str, labels: dict, image: str, pull_policy: str, workers: int,
                     estate_path: str, config_map: str, env: list[dict], mounts: list[Mount], metrics_port: int,
                     service_monitor: bool, instance_flag: str, metrics_flag: str,
                     resources: dict) -> list[dict]:
    """Headless Service, StatefulSet, PodDisruptionBudget (and ServiceMonitor) of the stream workers."""
    selector = {"app.kubernetes.io/name": "reporting", "app.kubernetes.io/component": "stream",
                "app.kubernetes.io/instance": labels.get("app.kubernetes.io/instance", name)}
    pod_labels = {**labels, **selector}
    service = {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": pod_labels},
        "spec": {"clusterIP": "None", "selector": selector,
                 "ports": [{"name": "metrics", "port": metrics_port, "targetPort": "metrics", "protocol": "TCP"}]},
    }
    container = {
        "name": "stream",
        "image": image,
        "imagePullPolicy": pull_policy,
        "command": ["reporting"],
        # $(POD_NAME) is expanded by Kubernetes: the static member id is the pod name
        "args": ["--estate", estate_path, "stream", instance_flag, "$(POD_NAME)", metrics_flag, str(metrics_port)],
        "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "REPORTING_ESTATE", "value": estate_path},
                {"name": "REPORTING_STATE_DIR", "value": STATE_DIR},
                *env],
        "ports": [{"name": "metrics", "containerPort": metrics_port, "protocol": "TCP"}],
        "volumeMounts": [estate_mount(estate_path), {"name": "state", "mountPath": STATE_DIR},
                         *[m.mount_spec() for m in mounts]],
        "resources": resources,
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }
    statefulset = {
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": namespace, "labels": pod_labels},
        "spec": {
            "serviceName": name,
            "replicas": workers,
            # workers do not depend on each other: start and replace them all at once, not one by one
            "podManagementPolicy": "Parallel",
            "updateStrategy": {"type": "RollingUpdate"},
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": pod_labels,
                             "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": str(metrics_port),
                                             "prometheus.io/path": "/metrics"}},
                "spec": {
                    # SIGTERM: the worker commits the batch in flight, then exits
                    "terminationGracePeriodSeconds": 120,
                    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [container],
                    "volumes": [estate_volume(config_map), {"name": "state", "emptyDir": {}},
                                *[m.volume_spec() for m in mounts]],
                },
            },
        },
    }
    pdb = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
           "metadata": {"name": name, "namespace": namespace, "labels": pod_labels},
           "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector}}}
    out = [service, statefulset, pdb]
    if service_monitor:
        out.append({"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
                    "metadata": {"name": name, "namespace": namespace, "labels": pod_labels},
                    "spec": {"selector": {"matchLabels": selector},
                             "endpoints": [{"port": "metrics", "path": "/metrics", "interval": "30s"}]}})
    return out
