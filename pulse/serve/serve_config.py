"""Generate the Serve config YAML (``serve run`` / ``serve deploy``) from a ``ServeConfig``.

``python -m pulse.serve.serve_config --config configs/serve/cpu.yaml --out serve.yaml``
writes a multi-application Serve config. The KubeRay RayService embeds this same document
(``python cluster/manifests.py --serve-config configs/serve/cpu.yaml``). Every engine uses
``import_path: pulse.serve.job:app_builder`` with the ServeConfig as ``args``, so the app is
built on the cluster, where the API key env var / secret file live, and vLLM models run behind
the same ingress (keys, limits, image checks) as transformers ones.
"""

from __future__ import annotations

import argparse
from typing import Any

import yaml

from pulse import io
from pulse.config import ConfigError, load_config
from pulse.serve.config import ServeConfig, engine_kind

APP_IMPORT_PATH = "pulse.serve.job:app_builder"


def uses_vllm(cfg: ServeConfig) -> bool:
    """Whether every model runs on vLLM (Ray ``LLMServer``s); a mix of engines is refused."""
    kinds = {engine_kind(m) for m in cfg.models}
    if len(kinds) > 1:
        raise ConfigError(f"models[] mix engines {sorted(kinds)}; serve vLLM and transformers models apart")
    return kinds == {"vllm"}


def application(cfg: ServeConfig, working_dir: str | None = None) -> dict[str, Any]:
    """One entry of ``applications:`` for this config."""
    uses_vllm(cfg)  # refuses a mix of engines before anything is written
    app: dict[str, Any] = {
        "name": cfg.app_name,
        "route_prefix": cfg.route_prefix,
        "import_path": APP_IMPORT_PATH,
        "args": cfg.model_dump(mode="json", exclude={"ray"}),
    }
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", "-c", required=True)
    parser.add_argument("--out", required=True, help="Serve config YAML to write (local or s3://)")
    parser.add_argument("--working-dir", help="runtime_env.working_dir (e.g. a zip URI with pulse)")
    parser.add_argument("overrides", nargs="*", metavar="key.sub=value")
    args = parser.parse_args(argv)
    cfg = load_config(ServeConfig, args.config, args.overrides)
    io.write_text(args.out, yaml.safe_dump(serve_config(cfg, args.working_dir), sort_keys=False))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
