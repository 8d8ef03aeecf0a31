"""`reporting estate derive`: a checked copy of the estate file with keys changed."""

import pytest

from pipelines.config.load import load_estate

pytestmark = pytest.mark.unit


def test_derive_writes_a_checked_copy_with_yaml_values(cli, estate, tmp_path):
    out = tmp_path / "variants" / "cluster.yaml"
    r = cli("estate", "derive", str(out), "--set", "kafka.bootstrap_servers=[127.0.0.1:59092, 127.0.0.1:59093]",
            "--set", "kafka.local_cluster={partitions: 4, replication_factor: 2}", "--set", "reporting.backend=postgres",
            "--state-dir", str(tmp_path / "other-state"))
    assert r.exit_code == 0, r.output
    assert "2 Kafka bootstrap server(s), cluster profile" in " ".join(r.output.split())
    derived, original = load_estate(out, environ={}), load_estate(estate, environ={})
    assert derived.kafka.bootstrap_servers == ("127.0.0.1:59092", "127.0.0.1:59093")
    assert derived.kafka.local_cluster.partitions == 4 and derived.reporting.backend == "postgres"
    assert derived.state_dir == tmp_path / "other-state"
    # relative paths of the original still point at the same files from the new folder
    assert [s.connector for s in derived.services] == [s.connector for s in original.services]
    assert derived.contracts == original.contracts


def test_an_invalid_result_is_one_line_and_no_file(cli, tmp_path):
    out = tmp_path / "bad.yaml"
    r = cli("estate", "derive", str(out), "--set", "reporting.backend=oracle")
    assert r.exit_code == 2
    assert "reporting.backend" in r.output and "'duckdb', 'postgres' or 'ducklake'" in r.output
    assert not out.exists()
    r = cli("estate", "derive", str(out), "--set", "no-equals-sign")
    assert r.exit_code == 2 and "expected KEY=VALUE" in r.output
