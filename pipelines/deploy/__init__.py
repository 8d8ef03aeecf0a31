"""Deployment of the estate beyond one machine: rendered from the estate file, checked, never holding a
secret value (docs/deploy.md).

`render_kubernetes(settings_or_estate, image, namespace, workers)` → the Kubernetes resources (Strimzi
Kafka, Kafka Connect and connectors, the pipeline workers' StatefulSet); `render_dagster_values(...)` →
values for the Dagster Helm chart; `render_to_folder(...)` writes both as YAML files.
"""

from pipelines.deploy.kubernetes import (
    KubernetesOptions,
    apply_instructions,
    cluster_problems,
    cluster_warnings,
    render_dagster_values,
    render_kubernetes,
    render_to_folder,
    secret_keys,
    write_kubernetes,
)
from pipelines.deploy.secrets import DeployError
from pipelines.deploy.workers import instance_ids

__all__ = ["DeployError", "KubernetesOptions", "apply_instructions", "cluster_problems", "cluster_warnings", "instance_ids",
           "render_dagster_values", "render_kubernetes", "render_to_folder", "secret_keys", "write_kubernetes"]
