"""A hot model's container, built purely from the spec: no engine, no store."""

from __future__ import annotations

from pathlib import Path

from orchestrator.container_spec import (
    MONITORING_CONFIG,
    MONITORING_TEXT,
    ModelMount,
    container_spec,
    store_env,
)
from orchestrator.runtime import InstanceSpec
from policies.schema import ContainerSettings
from pools.model_server import monitoring


def spec(**settings: object) -> InstanceSpec:
    return InstanceSpec("m", "s3://bucket/models", ContainerSettings.model_validate(settings),
                        "h1", 12.5)


def test_our_image_reads_the_store_itself_and_listens_on_all_interfaces() -> None:
    run = container_spec(spec(args=["--num_load_threads=1"], memory="1g", cpus=0.5),
                         ModelMount("s3://bucket/models/m", {}), "sc")
    assert run["command"] == [
        "tierserve", "model-server", "--port=8500", "--rest_api_port=8501", "--model_name=m",
        "--model_base_path=s3://bucket/models/m", "--host=0.0.0.0",
        # TensorFlow's pools sized to the granted half CPU.
        "--tensorflow_intra_op_parallelism=1", "--tensorflow_inter_op_parallelism=2",
        "--num_load_threads=1"]
    assert run["name"] == "tierserve-sc-m"
    assert run["labels"] == {"tierserve.managed-by": "tierserve", "tierserve.scope": "sc",
                             "tierserve.model": "m", "tierserve.policy-hash": "h1",
                             "tierserve.hot-since": "12.5"}
    assert (run["mem_limit"], run["nano_cpus"]) == (1024**3, 500_000_000)
    assert run["cpu_shares"] == 1024  # Docker's default weight; the cold pool runs lower
    assert set(run["ports"].values()) == {("127.0.0.1", None)}
    assert run["cap_drop"] == ["ALL"] and "network" not in run


def test_official_image_gets_its_flags_and_the_synced_copy_read_only() -> None:
    mount = ModelMount.synced("m", Path("/var/tierserve/models/m"),
                              Path("/var/tierserve/monitoring.config"))
    run = container_spec(spec(kind="tensorflow-serving", image="tensorflow/serving:2.15",
                              volumes={"/etc/extra": "/extra"}, args=["--enable_batching"]),
                         mount, "sc", "tiernet")
    # Flags only: the image's entrypoint runs tensorflow_model_server with them. The
    # monitoring config turns on its Prometheus metrics (off by default in TF Serving).
    assert run["command"] == ["--port=8500", "--rest_api_port=8501", "--model_name=m",
                              "--model_base_path=/models/m",
                              f"--monitoring_config_file={MONITORING_CONFIG}",
                              "--enable_batching"]
    assert run["volumes"] == {"/var/tierserve/models/m": {"bind": "/models/m", "mode": "ro"},
                              "/var/tierserve/monitoring.config": {"bind": MONITORING_CONFIG,
                                                                   "mode": "ro"},
                              "/etc/extra": {"bind": "/extra", "mode": "ro"}}
    assert run["network"] == "tiernet" and "nano_cpus" not in run
    # No CPU grant: no thread flags, the server sizes its pools to what it finds.


def test_cpu_weight_and_threads_follow_the_policy() -> None:
    settings = spec(cpus=3, cpu_shares=4096, args=["--tensorflow_intra_op_parallelism=8"])
    run = container_spec(settings, ModelMount("s3://bucket/models/m", {}), "sc")
    assert run["cpu_shares"] == 4096 and run["nano_cpus"] == 3_000_000_000
    flags = [a for a in run["command"] if "parallelism" in a]
    # Granted 3 CPUs; the operator's own flag comes last and wins.
    assert flags == ["--tensorflow_intra_op_parallelism=3", "--tensorflow_inter_op_parallelism=3",
                     "--tensorflow_intra_op_parallelism=8"]


def test_a_local_store_is_mounted_at_its_own_path() -> None:
    run = container_spec(spec(), ModelMount.local_store("m", Path("/srv/models")), "sc")
    assert "--model_base_path=/srv/models/m" in run["command"]
    assert run["volumes"] == {"/srv/models": {"bind": "/srv/models", "mode": "ro"}}


def test_official_images_own_program_is_kept_when_named_and_config_is_tf_servings() -> None:
    run = container_spec(spec(kind="tensorflow-serving", command=["/usr/bin/tf_serving"]),
                         ModelMount.synced("m", Path("/srv/m")), "sc")
    assert run["command"][0] == "/usr/bin/tf_serving"
    assert not any(a.startswith("--monitoring") for a in run["command"])  # none mounted
    # What the runtime writes is a MonitoringConfig TF Serving (and our server) accepts.
    settings = monitoring.parse_text(MONITORING_TEXT)
    assert settings.enabled and settings.path == "/monitoring/prometheus/metrics"


def test_hot_containers_get_the_orchestrators_store_credentials_unless_the_policy_sets_them(
        ) -> None:
    inherited = store_env({"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s",
                           "AWS_ENDPOINT_URL": "http://minio:9000", "AWS_REGION": "",
                           "PGPASSWORD": "never", "TIERSERVE_ADMIN_TOKEN": "never"})
    assert inherited == {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s",
                         "AWS_ENDPOINT_URL": "http://minio:9000"}
    run = container_spec(spec(env={"AWS_ENDPOINT_URL": "http://s3.other:9000"}),
                         ModelMount("s3://bucket/models/m", {}), "sc", None,
                         inherited_env=inherited)
    assert run["environment"] == {"HOME": "/tmp", "AWS_ACCESS_KEY_ID": "k",
                                  "AWS_SECRET_ACCESS_KEY": "s",
                                  "AWS_ENDPOINT_URL": "http://s3.other:9000"}
