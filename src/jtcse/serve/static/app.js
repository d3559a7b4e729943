// The page talks to the same API as any client: /info, /search, /similarity. No build step, no CDN.
"use strict";

const $ = (id) => document.getElementById(id);

function headers() {
  const h = { "content-type": "application/json" };
  const key = $("api-key").value.trim();
  if (key) h["authorization"] = "Bearer " + key;
  return h;
}

async function call(path, body) {
  const response = await fetch(path, body === undefined
    ? { headers: headers() }
    : { method: "POST", headers: headers(), body: JSON.stringify(body) });
  const data = await response.json();
  if (response.status === 401) $("key-box").hidden = false;
  if (!response.ok) throw new Error((data.error && data.error.message) || response.statusText);
  return data;
}

async function loadInfo() {
  try {
    const info = await call("/info");
    const model = info.models[0];
    const corpus = info.corpus ? `${info.corpus.size} corpus sentences` : "no corpus (start with --corpus FILE)";
    $("model-line").textContent = `${model.id} · ${model.kind} · ${model.dimension} dimensions · ${corpus}`;
    if (!info.corpus) $("search-form").querySelector("button").disabled = true;
  } catch (err) {
    $("model-line").textContent = err.message;
    if (/loading/.test(err.message)) setTimeout(loadInfo, 1000);
  }
}

function showHits(hits) {
  const list = $("hits");
  list.replaceChildren();
  for (const hit of hits) {
    const item = document.createElement("li");
    item.className = "hit";
    const score = document.createElement("span");
    score.className = "score";
    score.textContent = hit.score.toFixed(4);
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = hit.text;
    const line = document.createElement("span");
    line.className = "line";
    line.textContent = `  line ${hit.id}`;
    item.append(score, text, line);
    list.append(item);
  }
}

$("search-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const query = $("query").value.trim();
  if (!query) return;
  $("search-status").textContent = "searching…";
  try {
    const data = await call("/search", { query, top_k: 5 });
    showHits(data.results[0].hits);
    $("search-status").textContent = `top ${data.results[0].hits.length} for “${query}”`;
  } catch (err) {
    $("search-status").textContent = err.message;
  }
});

$("compare-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const a = $("sentence-a").value.trim(), b = $("sentence-b").value.trim();
  if (!a || !b) return;
  try {
    const data = await call("/similarity", { pairs: [[a, b]] });
    $("compare-result").innerHTML = "cosine similarity: <strong></strong>";
    $("compare-result").querySelector("strong").textContent = data.scores[0].toFixed(4);
  } catch (err) {
    $("compare-result").textContent = err.message;
  }
});

$("api-key").addEventListener("change", loadInfo);
loadInfo();
