// Shared by every page: calls to farm's API with the session cookie, and signing out.
"use strict";
const farm = {
  async call(method, path, body) {
    const response = await fetch(path, {
      method,
      credentials: "same-origin",
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 401 && location.pathname !== "/login") {
      location.href = "/login?next=" + encodeURIComponent(location.pathname);
    }
    const payload = response.headers.get("content-type")?.includes("json") ? await response.json() : null;
    if (!response.ok) throw new Error(payload?.error?.message || response.statusText);
    return payload;
  },
  text(value) { return value === null || value === undefined ? "-" : String(value); },
  element(tag, attributes = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attributes)) {
      if (key === "class") node.className = value;
      else if (key.startsWith("data-")) node.setAttribute(key, value);
      else node[key] = value;
    }
    for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(farm.text(child)));
    return node;
  },
  labels: { todo: "todo", ready: "ready", rendering: "rendering", wfa: "waiting for approval", retake: "retake", done: "approved" },
};

document.getElementById("sign-out")?.addEventListener("click", async () => {
  await farm.call("DELETE", "/api/session");
  location.href = "/login";
});

const signIn = document.getElementById("sign-in");
signIn?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const error = document.getElementById("sign-in-error");
  try {
    await farm.call("POST", "/api/session", { token: document.getElementById("token").value });
    location.href = signIn.dataset.next || "/";
  } catch (failure) {
    error.textContent = failure.message;
    error.hidden = false;
  }
});
