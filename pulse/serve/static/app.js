// pulse web page: pick/photograph an ECG, ask questions, stream answers from /v1/chat/completions.
"use strict";

const base = new URL(".", window.location.href).href.replace(/\/$/, "");
const $ = (id) => document.getElementById(id);
let history = [];      // OpenAI-format messages of this conversation
let imageUrl = null;   // data URL of the chosen image, sent with the first question

function headers() {
  const h = { "Content-Type": "application/json" };
  const key = $("api-key").value.trim();
  if (key) h["Authorization"] = "Bearer " + key;
  return h;
}

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

function addTurn(role, text) {
  const div = document.createElement("div");
  div.className = "turn " + role;
  div.textContent = text;
  $("conversation").appendChild(div);
  return div;
}

async function loadModels() {
  try {
    const resp = await fetch(base + "/v1/models", { headers: headers() });
    const body = await resp.json();
    if (!resp.ok) throw new Error(body.error ? body.error.message : resp.statusText);
    $("model").innerHTML = "";
    for (const m of body.data) $("model").add(new Option(m.id, m.id));
    setStatus("");
  } catch (err) {
    setStatus("Cannot list models: " + err.message, true);
  }
}

$("image").addEventListener("change", () => {
  const file = $("image").files[0];
  if (!file) return;
  const reader = new FileReader();
  reader.onload = () => {
    imageUrl = reader.result;
    $("preview").src = imageUrl;
    $("preview").hidden = false;
    history = [];
    $("conversation").innerHTML = "";
  };
  reader.readAsDataURL(file);
});

$("api-key").addEventListener("change", loadModels);
$("new-chat").addEventListener("click", () => { history = []; $("conversation").innerHTML = ""; });

async function readStream(resp, onDelta) {
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, cut).trim();
      buffer = buffer.slice(cut + 2);
      if (!event.startsWith("data: ")) continue;
      const data = event.slice(6);
      if (data === "[DONE]") return;
      const chunk = JSON.parse(data);
      if (chunk.error) throw new Error(chunk.error.message);
      const delta = chunk.choices.length ? chunk.choices[0].delta.content : null;
      if (delta) onDelta(delta);
    }
  }
}

$("ask-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const question = $("question").value.trim();
  if (!question) return;
  const content = [{ type: "text", text: question }];
  if (history.length === 0 && imageUrl) content.unshift({ type: "image_url", image_url: { url: imageUrl } });
  const message = { role: "user", content };
  addTurn("user", question);
  const answerDiv = addTurn("assistant", "");
  answerDiv.id = "answer-" + history.length;
  $("ask").disabled = true;
  setStatus("Generating…");
  let answer = "";
  try {
    const resp = await fetch(base + "/v1/chat/completions", {
      method: "POST",
      headers: headers(),
      body: JSON.stringify({
        model: $("model").value,
        messages: history.concat([message]),
        max_tokens: parseInt($("max-tokens").value, 10) || 128,
        temperature: 0,
        stream: true,
      }),
    });
    if (!resp.ok) {
      const body = await resp.json();
      throw new Error(body.error ? body.error.message : resp.statusText);
    }
    await readStream(resp, (delta) => { answer += delta; answerDiv.textContent = answer; });
    history.push(message, { role: "assistant", content: answer });
    answerDiv.dataset.done = "true";
    setStatus("Done.");
  } catch (err) {
    answerDiv.dataset.done = "error";
    setStatus("Error: " + err.message, true);
  } finally {
    $("ask").disabled = false;
  }
});

loadModels();
