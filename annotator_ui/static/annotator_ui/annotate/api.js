// The annotate API (/api/v1/annotate/...): JSON over fetch with the session cookie and the
// page's CSRF token. A submission is retried with the very same body until the server answers,
// so a judgment is never lost to a dropped connection (the server is idempotent by its id).

export class ApiError extends Error {
  constructor(status, body) {
    super(firstMessage(body) || `the server answered ${status}`);
    this.status = status;
    this.body = body || {};
    this.code = this.body.code || null;
  }
}

function firstMessage(body) {
  if (!body || typeof body !== "object") return "";
  if (typeof body.detail === "string") return body.detail;
  for (const [key, value] of Object.entries(body)) {
    if (key !== "code" && Array.isArray(value) && value.length) return String(value[0]);
  }
  return "";
}

function csrfToken() {
  const field = document.querySelector("input[name=csrfmiddlewaretoken]");
  if (field) return field.value;
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

export async function call(method, url, body, { keepalive = false } = {}) {
  const response = await fetch(url, {
    method,
    keepalive,
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken() },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export function isTransient(error) {
  return !(error instanceof ApiError) || error.status >= 500 || error.status === 429;
}

function pause(ms) {
  // Wake early when the browser says the network is back.
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      window.removeEventListener("online", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    window.addEventListener("online", done);
  });
}

async function callUntilAnswered(method, url, body, onRetry) {
  let delay = 1000;
  for (let attempt = 1; ; attempt++) {
    try {
      return await call(method, url, body);
    } catch (error) {
      if (!isTransient(error)) throw error;
      onRetry?.(error, attempt, delay);
      await pause(delay);
      delay = Math.min(delay * 2, 15000);
    }
  }
}

const base = "/api/v1/annotate";

export const api = {
  next: (campaign) => call("POST", `${base}/campaigns/${campaign}/next`),
  heartbeat: (item) => call("POST", `${base}/items/${item}/heartbeat`),
  saveDraft: (item, draft, options) => call("PUT", `${base}/items/${item}/draft`, { draft }, options),
  audio: (item) => call("GET", `${base}/items/${item}/audio`),
  skip: (item, reason) => call("POST", `${base}/items/${item}/skip`, { reason }),
  // The answer also carries the next item (`next`), leased once the judgment is stored.
  submit: (item, judgment, onRetry) => callUntilAnswered("POST", `${base}/items/${item}/judgment?next=1`, judgment, onRetry),
};
