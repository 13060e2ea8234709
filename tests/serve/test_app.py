"""The OpenAI-compatible app over real HTTP with the ``openai`` client: routes, streaming,
multi-turn, greedy parity with offline ``generate()``, every limit's 4xx, auth, logs, web page."""

from __future__ import annotations

import concurrent.futures
import http.server
import json
import shutil
import threading
from pathlib import Path

import httpx
import openai
import pytest
from PIL import Image

from pulse.models.loader import load_pretrained_dir
from tests.serve.serve_testlib import data_url, image_message, make_config, png_bytes, running

MODEL = "pulse-tiny"
API_KEY = "sk-test-0123456789abcdef"


@pytest.fixture(scope="module")
def image_server():
    """A real local HTTP server with one PNG, for the remote-image allow-list."""
    payload = png_bytes(seed=3)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


@pytest.fixture(scope="module")
def endpoint(ray_session, tiny_llava_dir, tmp_path_factory, image_server):
    key_file = tmp_path_factory.mktemp("secrets") / "keys.txt"
    key_file.write_text(f"# pulse keys\n{API_KEY}\n")
    cfg = make_config(
        tiny_llava_dir,
        auth={"api_key_env": None, "api_key_file": str(key_file)},
        limits={
            "max_body_bytes": 300_000,
            "max_image_bytes": 60_000,
            "max_image_pixels": 200 * 200,
            "max_images": 2,
            "max_tokens_cap": 64,
            "default_max_tokens": 16,
        },
        remote_images={"enabled": True, "allowed_hosts": ["127.0.0.1"], "allow_private_addresses": True},
    )
    with running(cfg) as url:
        yield url


@pytest.fixture(scope="module")
def client(endpoint) -> openai.OpenAI:
    return openai.OpenAI(base_url=endpoint, api_key=API_KEY, max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def offline(tiny_llava_dir):
    """Offline reference: the same checkpoint, processor and chat template, plain ``generate()``."""
    model, processor = load_pretrained_dir(tiny_llava_dir)

    def generate(messages: list[dict], images: list[Image.Image], max_new_tokens: int) -> tuple[str, int]:
        prompt = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        inputs = processor(
            images=images or None, text=[prompt], add_special_tokens=False, return_tensors="pt"
        )
        out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        new = out[0, inputs["input_ids"].shape[1] :]
        if int(new[-1]) == processor.tokenizer.eos_token_id:
            new = new[:-1]
        return processor.tokenizer.decode(new, skip_special_tokens=True), len(new)

    return generate


def ecg_image() -> Image.Image:
    import io

    return Image.open(io.BytesIO(png_bytes())).convert("RGB")


def test_models_route_lists_the_configured_model(client):
    assert [m.id for m in client.models.list().data] == [MODEL]


def test_greedy_completion_reproduces_offline_generate(client, offline, ecg_data_url):
    question = "What is the rhythm in this ECG image?"
    resp = client.chat.completions.create(
        model=MODEL, messages=[image_message(question, ecg_data_url)], max_tokens=20, temperature=0
    )
    expected, n_tokens = offline(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}],
        [ecg_image()],
        20,
    )
    assert resp.choices[0].message.content == expected
    assert resp.usage.completion_tokens == n_tokens
    assert resp.usage.prompt_tokens > 80  # the image expands into many <image> tokens


def test_concurrent_requests_are_batched_and_still_match_offline(client, offline, ecg_data_url):
    messages = [image_message("Does this ECG show atrial fibrillation?", ecg_data_url)]
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        futures = [
            pool.submit(client.chat.completions.create, model=MODEL, messages=messages, max_tokens=12)
            for _ in range(6)
        ]
        texts = [f.result().choices[0].message.content for f in futures]
    expected, _ = offline(
        [
            {
                "role": "user",
                "content": [{"type": "image"}, {"type": "text", "text": messages[0]["content"][1]["text"]}],
            }
        ],
        [ecg_image()],
        12,
    )
    assert texts == [expected] * 6


def test_streaming_yields_the_same_text_and_usage(client, ecg_data_url):
    messages = [image_message("Describe the ST segment.", ecg_data_url)]
    full = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=16)
    chunks = list(
        client.chat.completions.create(
            model=MODEL, messages=messages, max_tokens=16, stream=True, stream_options={"include_usage": True}
        )
    )
    deltas = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert len([d for d in deltas if d]) > 1, "answer arrived in one piece, not streamed"
    assert "".join(deltas) == full.choices[0].message.content
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == [full.choices[0].finish_reason]
    assert chunks[-1].usage.completion_tokens == full.usage.completion_tokens


def test_multi_turn_history_is_part_of_the_prompt(client, offline, ecg_data_url):
    first = image_message("What is the heart rate?", ecg_data_url)
    history = [first, {"role": "assistant", "content": "The heart rate is 75 bpm."}]
    follow_up = {"role": "user", "content": "Is that normal?"}
    resp = client.chat.completions.create(model=MODEL, messages=[*history, follow_up], max_tokens=12)
    expected, _ = offline(
        [
            {
                "role": "user",
                "content": [{"type": "image"}, {"type": "text", "text": "What is the heart rate?"}],
            },
            {"role": "assistant", "content": "The heart rate is 75 bpm."},
            {"role": "user", "content": "Is that normal?"},
        ],
        [ecg_image()],
        12,
    )
    single = client.chat.completions.create(model=MODEL, messages=[follow_up], max_tokens=12)
    assert resp.choices[0].message.content == expected
    assert resp.usage.prompt_tokens > single.usage.prompt_tokens + 50  # image tokens + history


def test_max_tokens_and_stop(client, ecg_data_url):
    messages = [image_message("What rhythm?", ecg_data_url)]
    short = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=3)
    assert short.usage.completion_tokens == 3
    assert short.choices[0].finish_reason == "length"
    full = (
        client.chat.completions.create(model=MODEL, messages=messages, max_tokens=16)
        .choices[0]
        .message.content
    )
    stop = full[len(full) // 2 : len(full) // 2 + 2]
    stopped = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=16, stop=[stop])
    assert stopped.choices[0].finish_reason == "stop"
    assert stopped.choices[0].message.content == full[: full.find(stop)]


def test_seeded_sampling_is_reproducible(client, ecg_data_url):
    messages = [image_message("What rhythm?", ecg_data_url)]

    def sample(seed):
        return (
            client.chat.completions.create(
                model=MODEL, messages=messages, max_tokens=12, temperature=1.0, seed=seed
            )
            .choices[0]
            .message.content
        )

    assert sample(7) == sample(7)
    assert len({sample(s) for s in (1, 2, 3)}) > 1


def _big_png(width: int, height: int) -> bytes:
    import io

    buf = io.BytesIO()
    Image.new("L", (width, height)).save(buf, "PNG")
    return buf.getvalue()


def _gif() -> bytes:
    import io

    buf = io.BytesIO()
    Image.new("RGB", (20, 20)).save(buf, "GIF")
    return buf.getvalue()


LIMIT_CASES = {
    "image bytes": ({"image": data_url(b"\x89PNG" + b"0" * 70_000)}, 413, "Image too large"),
    "decompression bomb": ({"image": data_url(_big_png(6000, 6000))}, 400, "too many pixels"),
    "pixels": ({"image": data_url(png_bytes(300, 300))}, 400, "too many pixels"),
    "image count": ({"images": 3}, 400, "Too many images"),
    "format": ({"image": data_url(_gif(), "image/gif")}, 400, "Unsupported image format GIF"),
    "base64": ({"image": "data:image/png;base64,@@not-base64@@"}, 400, "Invalid base64"),
    "not an image": ({"image": data_url(b"hello world, not an image")}, 400, "Cannot decode image"),
    "max_tokens cap": ({"max_tokens": 65}, 400, "exceeds this endpoint's cap of 64"),
    "unknown model": ({"model": "gpt-4o"}, 404, "does not exist"),
    "remote host": ({"image": "http://localhost:1/x.png"}, 403, "Image host not allowed"),
    "bad role": ({"messages": [{"role": "robot", "content": "hi"}]}, 400, "messages.0.role"),
}


@pytest.mark.parametrize("case", LIMIT_CASES, ids=list(LIMIT_CASES))
def test_each_limit_is_a_4xx_with_an_openai_error_body(client, ecg_data_url, case):
    change, status, message = LIMIT_CASES[case]
    url = change.get("image", ecg_data_url)
    content = [{"type": "image_url", "image_url": {"url": url}}] * change.get("images", 1)
    messages = change.get(
        "messages", [{"role": "user", "content": [*content, {"type": "text", "text": "Q?"}]}]
    )
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(
            model=change.get("model", MODEL), messages=messages, max_tokens=change.get("max_tokens", 4)
        )
    assert info.value.status_code == status
    error = info.value.body
    assert message in error["message"], error
    assert error["type"]
    # The replica survived the bad request.
    assert client.chat.completions.create(
        model=MODEL, messages=[image_message("Q?", ecg_data_url)], max_tokens=2
    )


def test_raw_http_errors_body_json_and_content_type(endpoint):
    url = endpoint + "/chat/completions"
    auth = {"Authorization": f"Bearer {API_KEY}"}
    too_big = httpx.post(url, content=b"x" * 400_000, headers={**auth, "Content-Type": "application/json"})
    assert too_big.status_code == 413 and "body too large" in too_big.json()["error"]["message"]
    bad_json = httpx.post(url, content=b'{"model": ', headers={**auth, "Content-Type": "application/json"})
    assert bad_json.status_code == 400 and bad_json.json()["error"]["code"] == "invalid_json"
    form = httpx.post(url, data={"model": MODEL}, headers=auth)
    assert form.status_code == 415 and "application/json" in form.json()["error"]["message"]
    missing = httpx.get(endpoint + "/nope", headers=auth)
    assert missing.status_code == 404 and "error" in missing.json()


def test_allow_listed_remote_image_is_fetched(client, image_server):
    url = f"http://127.0.0.1:{image_server}/ecg.png"
    resp = client.chat.completions.create(model=MODEL, messages=[image_message("Rhythm?", url)], max_tokens=4)
    assert resp.usage.prompt_tokens > 80


def test_auth_requires_a_valid_bearer_key(endpoint, ecg_data_url):
    wrong = openai.OpenAI(base_url=endpoint, api_key="wrong-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        wrong.models.list()
    assert info.value.status_code == 401 and info.value.body["message"] == "Invalid API key"
    with pytest.raises(openai.AuthenticationError):
        wrong.chat.completions.create(model=MODEL, messages=[image_message("Q", ecg_data_url)])
    missing = httpx.post(endpoint + "/chat/completions", json={"model": MODEL, "messages": []})
    assert missing.status_code == 401 and "Missing API key" in missing.json()["error"]["message"]
    assert missing.headers["www-authenticate"] == "Bearer"
    basic = httpx.get(endpoint + "/models", headers={"Authorization": "Basic abc"})
    assert basic.status_code == 401


def test_health_route(endpoint):
    resp = httpx.get(endpoint.removesuffix("/v1") + "/health")
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok", "models": [MODEL]}


def test_request_logs_have_ids_and_tokens_but_no_keys_or_image_bytes(client, ray_session, ecg_data_url):
    import time

    resp = client.chat.completions.create(
        model=MODEL, messages=[image_message("Log me", ecg_data_url)], max_tokens=5
    )
    logs_dir = Path(ray_session._private.worker._global_node.get_session_dir_path()) / "logs" / "serve"
    deadline = time.time() + 20
    text = ""
    while time.time() < deadline and resp.id not in text:
        text = "\n".join(p.read_text(errors="replace") for p in logs_dir.glob("*.log"))
        time.sleep(0.5)
    line = next(line for line in text.splitlines() if f"id={resp.id}" in line)
    assert f"model={MODEL}" in line and "completion_tokens=5" in line and "latency_ms=" in line
    assert API_KEY not in text
    assert ecg_data_url.split(",", 1)[1][:64] not in text


def test_one_request_id_in_the_header_body_and_log_and_the_clients_own_is_kept(endpoint, ecg_data_url):
    url, auth = endpoint + "/chat/completions", {"Authorization": f"Bearer {API_KEY}"}
    body = {"model": MODEL, "messages": [image_message("Id?", ecg_data_url)], "max_tokens": 2}
    plain = httpx.post(url, json=body, headers=auth, timeout=120)
    assert plain.headers.get_list("x-request-id") == [plain.headers["x-request-id"]]  # exactly one
    assert plain.json()["id"] == f"chatcmpl-{plain.headers['x-request-id']}"
    mine = httpx.post(url, json=body, headers={**auth, "X-Request-ID": "trace-42"}, timeout=120)
    assert mine.headers.get_list("x-request-id") == ["trace-42"] and mine.json()["id"] == "chatcmpl-trace-42"
    refused = httpx.post(url, json={**body, "max_tokens": -1}, headers={**auth, "X-Request-ID": "t-43"})
    assert refused.status_code == 400 and refused.headers.get_list("x-request-id") == ["t-43"]
    odd = httpx.post(url, json=body, headers={**auth, "X-Request-ID": "x" * 300}, timeout=120)
    assert odd.status_code == 200 and odd.json()["id"].startswith("chatcmpl-") and len(odd.json()["id"]) < 40


def test_web_page_and_static_files_are_served(endpoint):
    root = endpoint.removesuffix("/v1")
    page = httpx.get(root + "/")
    assert page.status_code == 200 and 'id="ask-form"' in page.text
    script = httpx.get(root + "/static/app.js")
    assert script.status_code == 200 and "/v1/chat/completions" in script.text
    # httpx sends /job.py: an unknown route, 401 without a key and 404 with one; never the file.
    assert httpx.get(root + "/static/../job.py").status_code == 401
    traversal = httpx.get(root + "/static/../job.py", headers={"Authorization": f"Bearer {API_KEY}"})
    assert traversal.status_code == 404 and "import" not in traversal.text
    assert httpx.get(root + "/static/%2E%2E%2Fjob.py").status_code == 401


def test_web_page_streams_an_answer_in_headless_chromium(endpoint, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not chromium or not driver_path:
        pytest.skip("needs Debian's chromium + chromium-driver (scripts/test.sh installs them)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (pip install selenium)")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(flag)
    image_path = tmp_path / "ecg.png"
    image_path.write_bytes(png_bytes())
    from selenium.webdriver.chrome.service import Service

    browser = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        browser.set_page_load_timeout(60)
        browser.get(endpoint.removesuffix("/v1") + "/")
        browser.find_element(By.ID, "api-key").send_keys(API_KEY)
        browser.execute_script("document.getElementById('api-key').dispatchEvent(new Event('change'))")
        wait = WebDriverWait(browser, 60)
        wait.until(lambda b: b.find_element(By.ID, "model").get_attribute("value") == MODEL)
        browser.find_element(By.ID, "image").send_keys(str(image_path))
        wait.until(lambda b: b.find_element(By.ID, "preview").get_attribute("hidden") is None)
        browser.find_element(By.ID, "max-tokens").clear()
        browser.find_element(By.ID, "max-tokens").send_keys("8")
        browser.find_element(By.ID, "ask").click()
        wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "#answer-0[data-done]"))
        answer = browser.find_element(By.ID, "answer-0")
        assert answer.get_attribute("data-done") == "true", browser.find_element(By.ID, "status").text
        assert answer.text.strip()
        assert "Done" in browser.find_element(By.ID, "status").text
    finally:
        browser.quit()


def test_openai_error_body_shape_from_raw_http(endpoint):
    resp = httpx.post(
        endpoint + "/chat/completions",
        json={"model": MODEL, "messages": []},
        headers={"Authorization": f"Bearer {API_KEY}"},
    )
    body = resp.json()
    assert resp.status_code == 400
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["param"] == "messages"
    json.dumps(body)


def _wrapped_base64_png() -> str:
    import base64
    import textwrap

    return "data:image/png;base64," + "\n".join(textwrap.wrap(base64.b64encode(png_bytes()).decode(), 76))


def _mpo_jpeg() -> str:
    import io

    buf = io.BytesIO()
    Image.open(io.BytesIO(png_bytes())).convert("RGB").save(
        buf, "MPO", save_all=True, append_images=[Image.new("RGB", (30, 20))]
    )
    return data_url(buf.getvalue(), "image/jpeg")


@pytest.mark.parametrize("url", [_wrapped_base64_png(), _mpo_jpeg()], ids=["base64-76-columns", "mpo-jpeg"])
def test_what_real_clients_send_is_accepted(client, url):
    resp = client.chat.completions.create(model=MODEL, messages=[image_message("Rhythm?", url)], max_tokens=2)
    assert resp.usage.prompt_tokens > 80


CLIENT_MISTAKES = {
    "deep nesting": b'{"model": "pulse-tiny", "messages": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
    "huge integer": b'{"model": "pulse-tiny", "max_tokens": ' + b"9" * 10_000 + b', "messages": []}',
    "NaN literal": b'{"model": "pulse-tiny", "temperature": NaN, "messages": [{"role": "user", "content": "x"}]}',
    "stream_options type": json.dumps(
        {
            "model": MODEL,
            "stream": True,
            "stream_options": "yes",
            "messages": [{"role": "user", "content": "x"}],
        }
    ).encode(),
    "seed out of range": json.dumps(
        {"model": MODEL, "seed": 2**70, "messages": [{"role": "user", "content": "x"}]}
    ).encode(),
    "temperature out of range": json.dumps(
        {"model": MODEL, "temperature": 1e300, "messages": [{"role": "user", "content": "x"}]}
    ).encode(),
    "malformed image url": json.dumps(
        {"model": MODEL, "messages": [image_message("x", "http://[::1/x.png")]}
    ).encode(),
    "image token in text": json.dumps(
        {"model": MODEL, "messages": [{"role": "user", "content": "<image> what?"}]}
    ).encode(),
}


@pytest.mark.parametrize("case", CLIENT_MISTAKES, ids=list(CLIENT_MISTAKES))
def test_client_mistakes_are_a_4xx_in_the_openai_format(endpoint, case):
    resp = httpx.post(
        endpoint + "/chat/completions",
        content=CLIENT_MISTAKES[case],
        headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"},
        timeout=60,
    )
    assert 400 <= resp.status_code < 500, resp.text[:300]
    assert set(resp.json()["error"]) == {"message", "type", "param", "code"}


def test_every_route_but_health_and_the_page_needs_a_key_and_head_works(endpoint):
    root = endpoint.removesuffix("/v1")
    auth = {"Authorization": f"Bearer {API_KEY}"}
    for path in ("/openapi.json", "/docs", "/redoc", "/v1/models", "/nope", "/v1/chat/completions"):
        resp = httpx.get(root + path)
        assert resp.status_code == 401, (path, resp.status_code)
        assert resp.json()["error"]["code"] == "invalid_api_key"
    spec = httpx.get(root + "/openapi.json", headers=auth)
    assert spec.status_code == 200 and "/v1/chat/completions" in spec.json()["paths"]
    assert httpx.get(root + "/v1/chat/completions", headers=auth).status_code == 405
    assert httpx.get(root + "/nope", headers=auth).status_code == 404
    for path in ("/health", "/", "/static/app.js"):
        assert httpx.get(root + path).status_code == 200, path
        head = httpx.head(root + path)
        assert head.status_code == 200 and head.content == b"", path
    assert httpx.head(root + "/v1/models", headers=auth).status_code == 200
    assert httpx.head(root + "/v1/models").status_code == 401
