"""Values for the official Dagster Helm chart (`dagster/dagster`): one user code deployment serving the
code location `pipelines.definitions` from the product's image, with the estate file and secrets. Pure.

The chart runs the webserver, the daemon (schedules, sensors, run queue) and its own PostgreSQL for run
storage; these values only add the code location. `includeConfigInLaunchedRuns` gives the run pods the
same environment, estate file and secret volumes as the code server.
"""

from __future__ import annotations

from pipelines.deploy.secrets import Mount
from pipelines.deploy.workers import STATE_DIR, estate_mount, estate_volume

CODE_SERVER_PORT = 3030


def split_image(image: str) -> tuple[str, str]:
    """(repository, tag) as the chart joins them (`repository:tag`, and the chart's own version when the
    tag is empty, which would be the wrong image): `registry:5000/team/reporting:1.2` → (`registry:5000/
    team/reporting`, `1.2`); `repo@sha256:abc` → (`repo@sha256`, `abc`), which joins back to the digest;
    no tag → `latest`."""
    last = image.rsplit("/", 1)[-1]
    if "@" in last or ":" in last:
        repository, tag = image.rsplit(":", 1)
        return repository, tag
    return image, "latest"


def dagster_values(*, deployment: str, image: str, pull_policy: str, estate_path: str, config_map: str,
                   project_dir: str, env: list[dict], mounts: list[Mount]) -> dict:
    repository, tag = split_image(image)
    return {
        "dagster-user-deployments": {
            "enabled": True,
            "deployments": [{
                "name": deployment,
                "image": {"repository": repository, "tag": tag, "pullPolicy": pull_policy},
                "dagsterApiGrpcArgs": ["--module-name", "pipelines.definitions", "--attribute", "defs",
                                       "--working-directory", project_dir],
                "port": CODE_SERVER_PORT,
                "includeConfigInLaunchedRuns": {"enabled": True},
                "env": [{"name": "REPORTING_ESTATE", "value": estate_path},
                        {"name": "REPORTING_STATE_DIR", "value": STATE_DIR},
                        *env],
                "volumes": [estate_volume(config_map), {"name": "state", "emptyDir": {}},
                            *[m.volume_spec() for m in mounts]],
                "volumeMounts": [estate_mount(estate_path), {"name": "state", "mountPath": STATE_DIR},
                                 *[m.mount_spec() for m in mounts]],
            }],
        },
    }
