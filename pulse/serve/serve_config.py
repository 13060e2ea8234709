"""Generate the Serve config YAML (``serve run`` / ``serve deploy``) and a KubeRay RayService from a ``ServeConfig``.

``python -m pulse.serve.serve_config --config configs/serve/tiny_cpu.yaml --out serve.yaml``
writes a multi-application Serve config; ``--rayservice rayservice.yaml`` also writes a
``ray.io/v1`` RayService whose ``serveConfigV2`` is the same document. CPU models use
``import_path: pulse.serve.job:app_builder`` with the ServeConfig as ``args`` (so the app
is built on the cluster, where the API key env var / secret file live); vLLM models use
``ray.serve.llm:build_openai_app`` with ``llm_configs``.
"""

from __future__ import annotations

import argparse
from typing import Any

import yaml

from pulse import io
from pulse.serve.config import ServeConfig
from pulse.serve.gpu import VLLM_IMPORT_PATH, serving_args

CPU_IMPORT_PATH = "pulse.serve.job:app_builder"


def application(cfg: ServeConfig, working_dir: str | None = None) -> dict[str, Any]:
    """One entry of ``applications:`` for this config."""
    if cfg.models[0].engine == "vllm":
        app: dict[str, Any] = {"import_path": VLLM_IMPORT_PATH, "args": serving_args(cfg)}
    else:
        args = cfg.model_dump(mode="json", exclude={"ray"})
        app = {"import_path": CPU_IMPORT_PATH, "args": args}
    app = {"name": cfg.app_name, "route_prefix": cfg.route_prefix, **app}
    if working_dir:
        app["runtime_env"] = {"working_dir": working_dir}
    return app


def serve_config(cfg: ServeConfig, working_dir: str | None = None) -> dict[str, Any]:
    """The multi-application Serve config document (validated against Ray's ``ServeDeploySchema``)."""
    from ray.serve.schema import ServeDeploySchema

    doc = {
        "proxy_location": "EveryNode",
        "http_options": {"host": cfg.host, "port": cfg.port},
        "applications": [application(cfg, working_dir)],
    }
    ServeDeploySchema.model_validate(doc)
    return doc


def rayservice(
    cfg: ServeConfig,
    name: str = "pulse",
    image: str = "rayproject/ray:2.60.0-py311",
    working_dir: str | None = None,
    gpu_workers: int = 0,
) -> dict[str, Any]:
    """A KubeRay ``RayService`` manifest whose ``serveConfigV2`` is ``serve_config(cfg)``."""
    doc = serve_config(cfg.model_copy(update={"host": "0.0.0.0"}), working_dir)
    worker: dict[str, Any] = {
        "groupName": "gpu" if gpu_workers else "cpu",
        "replicas": max(1, gpu_workers),
        "minReplicas": 0 if gpu_workers else 1,
        "maxReplicas": max(1, gpu_workers, cfg.autoscaling.max_replicas),
        "rayStartParams": {},
        "template": {"spec": {"containers": [_container("ray-worker", image, gpu=bool(gpu_workers))]}},
    }
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": {"name": name},
        "spec": {
            "serveConfigV2": yaml.safe_dump(doc, sort_keys=False),
            "rayClusterConfig": {
                "rayVersion": "2.60.0",
                "enableInTreeAutoscaling": True,
                "headGroupSpec": {
                    "rayStartParams": {"num-cpus": "0", "dashboard-host": "0.0.0.0"},
                    "template": {"spec": {"containers": [_container("ray-head", image, gpu=False)]}},
                },
                "workerGroupSpecs": [worker],
            },
        },
    }


def _container(name: str, image: str, gpu: bool) -> dict[str, Any]:
    limits: dict[str, Any] = {"cpu": "8", "memory": "32Gi"}
    if gpu:
        limits["nvidia.com/gpu"] = 1
    container: dict[str, Any] = {
        "name": name,
        "image": image,
        "resources": {"limits": limits, "requests": limits},
    }
    if name == "ray-head":
        container["ports"] = [
            {"containerPort": 6379, "name": "gcs"},
            {"containerPort": 8265, "name": "dashboard"},
            {"containerPort": 8000, "name": "serve"},
        ]
    return container


def main(argv: list[str] | None = None) -> int:
    from pulse.config import load_config

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", "-c", required=True)
    parser.add_argument("--out", required=True, help="Serve config YAML to write (local or s3://)")
    parser.add_argument("--rayservice", help="also write a KubeRay RayService manifest here")
    parser.add_argument("--working-dir", help="runtime_env.working_dir (e.g. a zip URI with pulse)")
    parser.add_argument("overrides", nargs="*", metavar="key.sub=value")
    args = parser.parse_args(argv)
    cfg = load_config(ServeConfig, args.config, args.overrides)
    io.write_text(args.out, yaml.safe_dump(serve_config(cfg, args.working_dir), sort_keys=False))
    print(f"wrote {args.out}")
    if args.rayservice:
        manifest = rayservice(cfg, working_dir=args.working_dir)
        io.write_text(args.rayservice, yaml.safe_dump(manifest, sort_keys=False))
        print(f"wrote {args.rayservice}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
