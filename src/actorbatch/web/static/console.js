// The console's only script: live parts, live logs, actions and login. No build step, no framework.
"use strict";

function csrfToken() {
  const match = document.cookie.match(/(?:^|; )csrftoken=([^;]*)/);
  return match ? decodeURIComponent(match[1]) : "";
}

function notice(text, isError) {
  const box = document.getElementById("notice");
  box.textContent = text;
  box.classList.toggle("error", !!isError);
  box.hidden = false;
}

async function post(url, body) {
  const response = await fetch(url, {
    method: "POST", credentials: "same-origin",
    headers: {"content-type": "application/json", "x-csrftoken": csrfToken()},
    body: JSON.stringify(body || {}),
  });
  let data = {};
  try { data = await response.json(); } catch (e) { data = {error: response.statusText}; }
  if (response.status === 401) {
    notice((data.error || "log in first") + " — ", true);
    const link = document.createElement("a");
    link.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
    link.textContent = "log in";
    document.getElementById("notice").append(link);
    throw new Error("unauthorised");
  }
  if (!response.ok) { notice(data.error || response.statusText, true); throw new Error(data.error); }
  return data;
}

// Live parts: fetch the page's live part again whenever the log moves (at most every 300 ms).
function followLog(pre, done) {
  const url = `/api/runs/${pre.dataset.run}/logs?after=${pre.dataset.after}`;
  return fetch(url, {credentials: "same-origin"}).then(r => r.ok ? r.json() : []).then(lines => {
    for (const l of lines) {
      const span = document.createElement("span");
      span.className = "line";
      span.textContent = `${l.at ? l.at.slice(11, 23) : "-"} ${l.task}#${l.attempt} ${l.line}\n`;
      pre.append(span);
      pre.dataset.after = l.position;
    }
  }).finally(done);
}

function startLive() {
  const live = document.getElementById("live");
  if (!live || !live.children.length || !window.EventSource) return;
  let busy = false, again = false;
  async function refresh() {
    if (new URL(location.href).searchParams.get("as_of")) return;  // the past does not change
    if (busy) { again = true; return; }
    busy = true;
    const url = new URL(location.href);
    url.searchParams.set("fragment", "1");
    try {
      const response = await fetch(url, {credentials: "same-origin"});
      if (response.ok) live.innerHTML = await response.text();
      const logs = document.getElementById("logs");
      if (logs) await new Promise(resolve => followLog(logs, resolve));
    } finally {
      busy = false;
      if (again) { again = false; setTimeout(refresh, 300); }
    }
  }
  const events = new EventSource("/api/events");
  let first = true;
  events.addEventListener("position", () => {
    if (first) { first = false; return; }  // the page was rendered at this position
    setTimeout(refresh, 50);
  });
  document.body.dataset.live = "on";
}

// The status screen as of a past moment: the slider spans the log's time, from its first entry to now.
function startSlider() {
  const form = document.querySelector("form[data-as-of]");
  if (!form) return;
  const slider = form.querySelector("input[type=range]"), moment = form.elements.as_of;
  // The first entry's time in ms, rounded up (it has microseconds): the slider's left end shows that entry.
  const start = Date.parse(form.dataset.start) + 1, live = document.getElementById("live");
  const end = () => Date.now();
  if (moment.value) {
    const at = Date.parse(moment.value.endsWith("Z") ? moment.value : moment.value + "Z");
    slider.value = Math.round(1000 * (at - start) / Math.max(1, end() - start));
  }
  let timer = null;
  slider.addEventListener("input", () => {
    const at = new Date(start + (end() - start) * slider.value / 1000);
    moment.value = slider.value === "1000" ? "" : at.toISOString().slice(0, 23);
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const url = new URL(location.href);
      if (moment.value) url.searchParams.set("as_of", moment.value); else url.searchParams.delete("as_of");
      history.replaceState(null, "", url);
      url.searchParams.set("fragment", "1");
      const response = await fetch(url, {credentials: "same-origin"});
      if (response.ok) live.innerHTML = await response.text();
    }, 250);
  });
}

function startActions() {
  document.addEventListener("click", async event => {
    const button = event.target.closest("[data-action]");
    if (button) {
      if (button.dataset.confirm && !confirm(button.dataset.confirm)) return;
      button.disabled = true;
      try {
        const data = await post(button.dataset.action);
        if (button.dataset.follow && data[button.dataset.follow]) { location.href = "/runs/" + data[button.dataset.follow]; return; }
        notice(data.message || "done");
      } catch (e) { /* shown */ } finally { button.disabled = false; }
    }
    if (event.target.closest("[data-logout]")) {
      try { await post("/api/logout"); } finally { location.href = "/"; }
    }
  });
  document.addEventListener("submit", async event => {
    const form = event.target;
    if (form.dataset.runForm !== undefined) {
      event.preventDefault();
      const body = {};
      const params = form.elements.params.value.trim();
      if (params) {
        try { body.params = JSON.parse(params); } catch (e) { notice("params: expected a JSON object", true); return; }
      }
      if (form.elements.at.value.trim()) body.at = form.elements.at.value.trim();
      try { const data = await post(form.dataset.runForm, body); location.href = "/runs/" + data.run_id; } catch (e) { /* shown */ }
    } else if (form.dataset.login !== undefined) {
      event.preventDefault();
      try {
        await post("/api/login", {token: form.elements.token.value});
        const next = form.dataset.next || "/";
        location.href = next.startsWith("/") && !next.startsWith("//") ? next : "/";
      } catch (e) { /* shown */ }
    }
  });
}

document.addEventListener("DOMContentLoaded", () => { startLive(); startSlider(); startActions(); });
