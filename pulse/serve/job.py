"""Serve LLaVA-NeXT checkpoints behind an OpenAI-compatible Ray Serve endpoint.

``pulse serve --config configs/serve/cpu.yaml port=8100`` deploys every model in the
config (transformers engine on CPU/GPU, or vLLM through ``ray.serve.llm``'s ``LLMServer``, always
behind pulse's own ingress with its keys and limits), prints the base
URL and serves until Ctrl-C / SIGTERM. ``start(cfg)`` / ``stop(cfg)`` do the same from Python.
Set ``$PULSE_API_KEY`` (or ``auth.api_key_file``) to require ``Authorization: Bearer <key>``;
without a key the endpoint only binds 127.0.0.1. ``pulse serve --checkpoint PATH`` (the
override ``checkpoint=PATH``) serves one checkpoint under its own name (``served_model_name``).
"""

from __future__ import annotations

import re
import signal
import threading
import time
from typing import Any

from pulse.runtime import init_ray
from pulse.serve.auth import check_binding, key_digest, load_api_keys
from pulse.serve.config import ServeConfig
from pulse.summary import StageSummary

CONFIG_CLASS = ServeConfig


def deployment_name(model_name: str) -> str:
    return "model-" + re.sub(r"[^A-Za-z0-9_-]", "-", model_name)


def build_app(cfg: ServeConfig):
    """The Serve application for ``cfg``: pulse's ingress + one model deployment per model
    (pulse's ``ModelServer`` for the transformers engine, Ray's ``LLMServer`` for vLLM)."""
    from ray import serve
    from ray.serve.config import BackpressureConfig

    from pulse.serve.app import HEADROOM_REQUESTS, OpenAIIngress, admission_limit
    from pulse.serve.serve_config import uses_vllm

    keys = load_api_keys(cfg.auth)
    check_binding(cfg.host, keys, cfg.auth)
    common = cfg.deployment_options()
    if uses_vllm(cfg):
        from pulse.serve.gpu import llm_server_deployment

        models = {m.name: llm_server_deployment(m, cfg, deployment_name(m.name)) for m in cfg.models}
    else:
        from pulse.serve.server import ModelServer

        models = {
            m.name: serve.deployment(ModelServer)
            .options(
                name=deployment_name(m.name),
                autoscaling_config=cfg.autoscaling.model_dump(),
                ray_actor_options={"num_cpus": cfg.num_cpus, "num_gpus": cfg.num_gpus},
                max_queued_requests=cfg.max_queued_requests,
                **common,
            )
            .bind(m.model_dump(mode="json"), cfg.num_cpus)
            for m in cfg.models
        }
    ingress = serve.deployment(OpenAIIngress).options(
        name="ingress",
        num_replicas=cfg.ingress_replicas,
        ray_actor_options={"num_cpus": cfg.ingress_num_cpus},
        # The ingress sheds chat requests itself (429) above admission_limit; the headroom keeps
        # /health and /v1/models answering; beyond both, the proxy answers 429 too. The proxy counts
        # requests still being assigned as queued, so its queue is sized for bursts, not for 0.
        **{**common, "max_ongoing_requests": admission_limit(cfg) + HEADROOM_REQUESTS},
        max_queued_requests=2 * (admission_limit(cfg) + HEADROOM_REQUESTS),
        backpressure_config=BackpressureConfig(status_code=429, retry_after_s=cfg.retry_after_s),
    )
    return ingress.bind(cfg.model_dump(mode="json"), models, [key_digest(k) for k in keys])


def app_builder(args: dict[str, Any]):
    """Entry point for ``serve run`` / ``serve deploy`` / KubeRay: ``import_path: pulse.serve.job:app_builder``."""
    return build_app(ServeConfig.model_validate(args))


def start(cfg: ServeConfig) -> str:
    """Deploy ``cfg`` on the current Ray (starting one if needed); returns the base URL ``.../v1``."""
    from ray import serve
    from ray.serve._private.api import serve_start  # public serve.start() does not return the client

    init_ray(cfg.ray)
    app = build_app(cfg)
    actual = serve_start(http_options={"host": cfg.host, "port": cfg.port}).http_config
    if actual.port != cfg.port or actual.host != cfg.host:
        raise RuntimeError(
            f"Serve is already running on this Ray at {actual.host}:{actual.port}; "
            f"set host/port to match or stop it first (requested {cfg.host}:{cfg.port})"
        )
    serve.run(app, name=cfg.app_name, route_prefix=cfg.route_prefix, blocking=False)
    return cfg.base_url


def stop(cfg: ServeConfig) -> None:
    """Delete this config's Serve application (in-flight requests finish within the graceful timeout)."""
    from ray import serve

    serve.delete(cfg.app_name)


def run(cfg: ServeConfig) -> StageSummary:
    """``pulse serve``: start, print the URL, block until Ctrl-C/SIGTERM, then stop gracefully;
    returns the summary of the session (URL, models, how long it served)."""
    started = time.time()
    url = start(cfg)
    print(
        f"pulse serve: {', '.join(m.name for m in cfg.models)} at {url}  (web page: {url[:-3]}/)", flush=True
    )
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    while not stopping.is_set():
        time.sleep(0.5)
    print("pulse serve: stopping (finishing in-flight requests)", flush=True)
    stop(cfg)
    return StageSummary(
        "serve",
        outputs={"url": url},
        seconds=time.time() - started,
        extra={"models": ", ".join(m.name for m in cfg.models)},
        counts_rows=False,
    )
