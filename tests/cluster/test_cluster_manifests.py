"""KubeRay manifests: generated from pulse's configs, checked in unchanged, structurally valid."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

import pytest
import yaml

from pulse.config import load_config, resolve_config_path
from pulse.jobs import load_job
from pulse.serve.config import ServeConfig
from pulse.serve.serve_config import serve_config

REPO = Path(__file__).resolve().parents[2]
KUBERAY = REPO / "cluster" / "kuberay"
SERVE_SOURCE = KUBERAY / "serve.yaml"
_spec = importlib.util.spec_from_file_location("cluster_manifests", REPO / "cluster" / "manifests.py")
cm = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(
    cm
)  # cluster/manifests.py: the generator lives beside the manifests, not in the wheel


def manifests() -> dict[str, dict]:
    return {p.name: yaml.safe_load(p.read_text()) for p in sorted(KUBERAY.glob("ray*.yaml"))}


def cluster_specs() -> list[tuple[str, dict]]:
    out = []
    for name, doc in manifests().items():
        spec = {"RayCluster": doc["spec"], "RayJob": doc["spec"].get("rayClusterSpec")}.get(doc["kind"])
        out.append((name, spec if spec is not None else doc["spec"]["rayClusterConfig"]))
    return out


def test_checked_in_manifests_equal_the_generated_ones():
    generated = cm.render_all(SERVE_SOURCE, "0.1.0")
    assert {p.name for p in generated} == set(manifests()), "a manifest is missing or extra"
    for path, text in generated.items():
        assert path.read_text() == text, f"{path.name} is stale: run python cluster/manifests.py"
    assert cm.main(["--check"]) == 0


def test_check_mode_reports_a_stale_manifest(tmp_path, monkeypatch, capsys):
    args = ["--serve-config", str(SERVE_SOURCE), "--out", str(tmp_path)]
    assert cm.main(["--check", *args]) == 1
    assert "stale:" in capsys.readouterr().err
    assert cm.main(args) == 0
    assert cm.main(["--check", *args]) == 0


def test_rayservice_serve_config_is_the_serve_yaml():
    service = manifests()["rayservice.yaml"]
    assert service["kind"] == "RayService"
    serve_cfg = load_config(ServeConfig, SERVE_SOURCE)
    applied = yaml.safe_load(service["spec"]["serveConfigV2"])
    assert applied == serve_config(serve_cfg.model_copy(update={"host": "0.0.0.0"})), "one generator"
    assert applied["http_options"] == {"host": "0.0.0.0", "port": serve_cfg.port}
    (app,) = applied["applications"]
    assert app["name"] == serve_cfg.app_name and app["route_prefix"] == serve_cfg.route_prefix
    assert app["import_path"] == "pulse.serve.job:app_builder", "vLLM runs behind pulse's own ingress"
    assert ServeConfig.model_validate(app["args"]).models == serve_cfg.models
    head = service["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    key_env = {
        "name": "PULSE_API_KEY",
        "valueFrom": {"secretKeyRef": {"name": "pulse-api-key", "key": "key"}},
    }
    assert serve_cfg.auth.api_key_env == "PULSE_API_KEY" and key_env in head["env"], (
        "the key comes from a Secret"
    )
    assert not serve_cfg.auth.allow_unauthenticated_remote


def test_rayservice_llm_configs_validate_against_ray_llmconfig():
    pytest.importorskip("ray.llm._internal.serve.core.configs.llm_config")
    from pulse.serve.gpu import llm_config_dict, validate_llm_config

    applied = yaml.safe_load(manifests()["rayservice.yaml"]["spec"]["serveConfigV2"])
    cfg = ServeConfig.model_validate(applied["applications"][0]["args"])
    for model in cfg.models:
        assert validate_llm_config(llm_config_dict(model, cfg)).model_id == model.name


def test_transformers_engine_app_args_build_pulses_own_serve_app(monkeypatch):
    """The generated args are accepted by pulse's own Serve entry point (the app is built, not run)."""
    monkeypatch.setenv("PULSE_API_KEY", "k8s-secret-key")
    cfg = ServeConfig(models=[{"name": "tiny", "checkpoint": "/models/pulse-tiny"}], host="0.0.0.0")
    (app,) = serve_config(cfg)["applications"]
    assert app["import_path"] == "pulse.serve.job:app_builder"
    module, _, attribute = app["import_path"].partition(":")
    application = getattr(importlib.import_module(module), attribute)(app["args"])
    assert type(application).__name__ == "Application"
    service = cm.rayservice_manifest(cfg, "0.1.0")
    containers = [service["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]["containers"][0]]
    envs = [e["name"] for c in containers for e in c["env"]]
    assert "PULSE_API_KEY" in envs, "the API key comes from a Kubernetes Secret"


@pytest.mark.parametrize(("name", "spec"), cluster_specs(), ids=lambda v: v if isinstance(v, str) else "")
def test_cluster_spec_structure(name, spec):
    import ray

    assert spec["rayVersion"] == ray.__version__
    assert spec["enableInTreeAutoscaling"] is True
    assert spec["authOptions"] == {"mode": "token"}
    head = spec["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0", "no task work on the head"
    for group in [head, *spec["workerGroupSpecs"]]:
        assert all(isinstance(v, str) for v in group["rayStartParams"].values()), "KubeRay wants strings"
        (container,) = group["template"]["spec"]["containers"]
        assert container["image"].startswith(cm.IMAGE) and container["resources"]["limits"]
    for group in spec["workerGroupSpecs"]:
        assert group["minReplicas"] == 0 and group["maxReplicas"] >= 1 and group["groupName"]
        limits = group["template"]["spec"]["containers"][0]["resources"]["limits"]
        gpus = limits.get("nvidia.com/gpu", 0)
        image = group["template"]["spec"]["containers"][0]["image"]
        assert ("cuda" in image) == bool(gpus)
        if gpus:
            assert group["template"]["spec"]["tolerations"][0]["key"] == "nvidia.com/gpu"
        marker = yaml.safe_load(yaml.safe_load(group["rayStartParams"]["resources"]))
        assert list(marker.values()) == [gpus or int(limits["cpu"])]


def test_one_rayjob_per_batch_job_running_its_entry_point():
    docs = manifests()
    for job in cm.JOB_RUNS:
        doc = docs[f"rayjob-{job.replace('_', '-')}.yaml"]
        assert doc["apiVersion"] == "ray.io/v1" and doc["kind"] == "RayJob"
        spec = doc["spec"]
        assert spec["shutdownAfterJobFinishes"] is True and spec["submissionMode"] == "K8sJobMode"
        assert spec["entrypoint"].startswith(f"python /app/jobs/{job}.py --config ")
        assert (REPO / "jobs" / f"{job}.py").is_file()
        assert isinstance(yaml.safe_load(spec["runtimeEnvYAML"]), dict)
    assert docs["raycluster.yaml"]["kind"] == "RayCluster"


def test_rayjob_configs_load_with_their_overrides():
    """Every RayJob's config + overrides validates against the job's typed config (jobs that exist)."""
    validated = []
    for job, (config, overrides) in cm.JOB_RUNS.items():
        _, config_class = load_job(job)
        resolve_config_path(config)
        load_config(config_class, config, overrides)
        validated.append(job)
    assert set(validated) == {"ingest", "render", "build", "train", "ecgbench_sweep"}
