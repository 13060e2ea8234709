"""Generated Serve config YAML and KubeRay RayService, validated with Ray's own schema."""

from __future__ import annotations

import yaml

from pulse.config import CONFIG_DIR, load_config
from pulse.serve.config import ServeConfig
from pulse.serve.gpu import validate_llm_config
from pulse.serve.serve_config import main, rayservice, serve_config


def test_cpu_config_round_trips_through_the_app_builder_args(tmp_path):
    cfg = load_config(ServeConfig, CONFIG_DIR / "serve" / "cpu.yaml", ["port=8555"])
    doc = serve_config(cfg, working_dir="s3://bucket/pulse.zip")
    app = doc["applications"][0]
    assert app["import_path"] == "pulse.serve.job:app_builder"
    assert doc["http_options"] == {"host": "127.0.0.1", "port": 8555}
    assert app["runtime_env"] == {"working_dir": "s3://bucket/pulse.zip"}
    assert ServeConfig.model_validate(app["args"]).models == cfg.models


def test_vllm_config_uses_ray_serve_llm_and_validates():
    cfg = load_config(ServeConfig, CONFIG_DIR / "serve" / "llava_next_vllm.yaml")
    app = serve_config(cfg)["applications"][0]
    assert app["import_path"] == "ray.serve.llm:build_openai_app"
    for llm_config in app["args"]["llm_configs"]:
        validated = validate_llm_config(llm_config)
        assert validated.engine_kwargs["limit_mm_per_prompt"] == {"image": 1}


def test_rayservice_embeds_the_same_serve_config():
    cfg = load_config(ServeConfig, CONFIG_DIR / "serve" / "llava_next_vllm.yaml")
    manifest = rayservice(cfg, gpu_workers=2)
    assert manifest["apiVersion"] == "ray.io/v1" and manifest["kind"] == "RayService"
    embedded = yaml.safe_load(manifest["spec"]["serveConfigV2"])
    assert embedded["applications"] == serve_config(cfg)["applications"]
    assert embedded["http_options"]["host"] == "0.0.0.0"
    worker = manifest["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]
    assert worker["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1


def test_cli_writes_both_files_locally_and_to_s3(tmp_path, s3_bucket):
    from pulse import io

    out = tmp_path / "serve.yaml"
    assert (
        main(
            [
                "-c",
                str(CONFIG_DIR / "serve" / "cpu.yaml"),
                "--out",
                str(out),
                "--rayservice",
                f"{s3_bucket}/rs.yaml",
                "port=8600",
            ]
        )
        == 0
    )
    assert yaml.safe_load(out.read_text())["http_options"]["port"] == 8600
    assert yaml.safe_load(io.read_text(f"{s3_bucket}/rs.yaml"))["kind"] == "RayService"
