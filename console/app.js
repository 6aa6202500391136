// The longrun web console: sign in with a token, start jobs, watch them live, read their timelines.
//
// Plain JavaScript with no dependencies, so it runs as the files are (no build step, nothing from
// another origin: the Content-Security-Policy allows scripts from this origin only). Everything that
// comes from the API is rendered as text (textContent, never innerHTML): job ids, names, details and
// log lines are user data.
"use strict";

(() => {
  const TOKEN_KEY = "longrun.token";
  const FINAL = new Set(["SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT"]);
  const RETRYABLE = new Set(["FAILED", "CANCELLED", "TIMED_OUT"]);
  const PING_MS = 5 * 60 * 1000; // API Gateway closes a WebSocket idle for 10 minutes
  const POLL_MS = 2000; // without a live WebSocket, events are read from the REST API this often
  const MAX_LOG_LINES = 5000;
  // A sensible start for each job kind's params (schemas/jobs/<type>.json has the full story).
  const EXAMPLES = {
    "create-project": { name: "my-shop", template: "web-app" },
    "git-clone": { repoUrl: "https://github.com/octocat/Hello-World.git", ref: "master", depth: 1 },
    "git-merge": { source: "feature/login", target: "main", strategy: "merge" },
    sync: { direction: "s3-to-efs", prefix: "src/", delete: false },
    build: { command: "sh build.sh", timeoutSeconds: 600 },
    "git-pull": { strategy: "ff-only" },
    "git-branch": { flow: "feature-start", name: "login" },
    "git-push": { branches: ["main", "develop"], tags: true },
    "delete-project": {},
  };
  const PROJECTS_PAGE = 5; // projects a page of the list (GET /projects?limit=)

  const $ = (id) => document.getElementById(id);

  /** The REST API's base URL: this page's address without its /console/… or /static/… part. */
  function apiBase(location) {
    const match = /^(.*?)\/(?:console|static)(?:\/|$)/.exec(location.pathname);
    return location.origin + (match ? match[1] : "");
  }

  const state = {
    api: apiBase(window.location),
    wsUrl: null,
    token: null,
    socket: null,
    socketOpen: false,
    reconnectDelay: 500,
    reconnectTimer: null,
    pingTimer: null,
    pollTimer: null,
    jobsCursor: null,
    jobsGeneration: 0,
    projectsCursor: null,
    projectsGeneration: 0,
    project: null, // the project whose actions are shown: see selectProject
    job: null, // the job on screen: see openJob
  };

  // ------------------------------------------------------------------------------- rendering

  /** An element with properties and children; strings become text nodes, never markup. */
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (key === "className") node.className = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(key, value);
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function jobLink(jobId, text) {
    return el("a", { href: `#/jobs/${encodeURIComponent(jobId)}`, className: "job-link", title: jobId }, text ?? jobId);
  }

  function statusBadge(status) {
    return el("span", { className: "status", dataset: { status: String(status || "") } }, status || "—");
  }

  function setStatus(node, status) {
    node.textContent = status || "—";
    node.dataset.status = String(status || "");
  }

  function formatTime(iso) {
    if (!iso) return "—";
    const date = new Date(iso);
    return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleString();
  }

  /** A time of day to the millisecond: events and steps of one job are seconds apart. */
  function formatClock(iso) {
    if (!iso) return "—";
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return String(iso);
    const pad = (n, width = 2) => String(n).padStart(width, "0");
    return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`;
  }

  function formatDuration(ms) {
    if (!Number.isFinite(ms) || ms < 0) return "—";
    if (ms < 1000) return `${Math.round(ms)} ms`;
    const seconds = ms / 1000;
    if (seconds < 60) return `${seconds.toFixed(1)} s`;
    const minutes = Math.floor(seconds / 60);
    return `${minutes} min ${Math.round(seconds - minutes * 60)} s`;
  }

  function compact(value, limit = 160) {
    if (value === null || value === undefined) return "";
    const text = typeof value === "string" ? value : JSON.stringify(value);
    if (!text || text === "{}") return "";
    return text.length > limit ? `${text.slice(0, limit - 1)}…` : text;
  }

  /** An API error in the contract's shape: code, message, and every detail (path: message). */
  function showProblem(box, answer) {
    box.replaceChildren();
    if (!answer) {
      box.hidden = true;
      return;
    }
    const body = answer.body && typeof answer.body === "object" ? answer.body : {};
    const error = body.error && typeof body.error === "object" ? body.error : {};
    box.append(
      el("strong", { className: "code" }, String(error.code || `HTTP ${answer.status}`)),
      answer.status ? el("span", { className: "http" }, ` ${answer.status}`) : null,
      el("span", { className: "message" }, ` ${String(error.message || "")}`),
    );
    if (Array.isArray(error.details) && error.details.length) {
      const list = el("ul", { className: "details" });
      for (const detail of error.details) {
        const item = el("li", {});
        if (detail && typeof detail === "object") {
          if (detail.path) item.append(el("code", { className: "path" }, String(detail.path)), ": ");
          if (detail.message !== undefined) item.append(String(detail.message));
          if (typeof detail.jobId === "string") item.append("job ", jobLink(detail.jobId));
          const rest = Object.fromEntries(
            Object.entries(detail).filter(([key]) => !["path", "message", "jobId"].includes(key)),
          );
          if (Object.keys(rest).length) item.append(" ", compact(rest));
        } else {
          item.append(String(detail));
        }
        list.append(item);
      }
      box.append(list);
    }
    box.hidden = false;
  }

  // ------------------------------------------------------------------------------- the API

  /** One REST call; resolves to {ok, status, body} whatever happens (network errors included). */
  async function call(method, path, body) {
    const headers = { Authorization: `Bearer ${state.token}` };
    const init = { method, headers, cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(state.api + path, init);
    } catch (error) {
      return { ok: false, status: 0, body: { error: { code: "NetworkError", message: String(error.message || error) } } };
    }
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = { error: { code: `HTTP ${response.status}`, message: text.slice(0, 300) } };
    }
    if (response.status === 401 && state.token) {
      signOut({ status: 401, body: data });
    }
    return { ok: response.ok, status: response.status, body: data };
  }

  async function loadConfig() {
    try {
      const response = await fetch("config.json", { cache: "no-store" });
      if (!response.ok) return;
      const config = await response.json();
      if (config && typeof config.ws === "string" && /^wss?:\/\//.test(config.ws)) state.wsUrl = config.ws;
    } catch {
      // No config: the console still works, reading events from the REST API instead.
    }
  }

  // ------------------------------------------------------------------------------- signing in

  /** The token's user (its `sub`), for display only: the API checks the token, not this. */
  function userOf(token) {
    try {
      const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      const claims = JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), "=")));
      return typeof claims.sub === "string" ? claims.sub : "?";
    } catch {
      return "?";
    }
  }

  async function signIn(token) {
    state.token = token;
    const answer = await call("GET", "/jobs?limit=1");
    if (!answer.ok) {
      state.token = null;
      sessionStorage.removeItem(TOKEN_KEY);
      showSignIn(answer);
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    $("sign-in").hidden = true;
    $("app").hidden = false;
    $("who").textContent = `signed in as ${userOf(token)}`;
    $("who").hidden = false;
    $("sign-out").hidden = false;
    showProblem($("sign-in-error"), null);
    connect();
    startPolling();
    loadJobs(true);
    loadProjects(true);
    route();
  }

  function showSignIn(answer) {
    $("app").hidden = true;
    $("who").hidden = true;
    $("sign-out").hidden = true;
    $("sign-in").hidden = false;
    showProblem($("sign-in-error"), answer || null);
    $("token").focus();
  }

  function signOut(answer) {
    state.token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    leaveJob();
    clearTimeout(state.reconnectTimer);
    clearInterval(state.pollTimer);
    if (state.socket) state.socket.close();
    $("job-rows").replaceChildren();
    $("project-rows").replaceChildren();
    closeProject();
    $("job").hidden = true;
    $("job-missing").hidden = true;
    $("token").value = "";
    showSignIn(answer);
  }

  // ------------------------------------------------------------------------------- WebSocket

  function setConnection(mode) {
    const node = $("connection");
    node.dataset.state = mode;
    node.textContent = { live: "live", connecting: "connecting…", off: "offline", none: "no WebSocket URL" }[mode];
  }

  function send(message) {
    if (state.socket && state.socketOpen) state.socket.send(JSON.stringify(message));
  }

  /** The one WebSocket of the session: reconnects with backoff and resubscribes to the job on screen. */
  function connect() {
    if (!state.token || state.socket) return;
    if (!state.wsUrl) {
      setConnection("none");
      return;
    }
    const separator = state.wsUrl.includes("?") ? "&" : "?";
    const socket = new WebSocket(`${state.wsUrl}${separator}token=${encodeURIComponent(state.token)}`);
    state.socket = socket;
    setConnection("connecting");
    socket.addEventListener("open", () => {
      state.socketOpen = true;
      state.reconnectDelay = 500;
      setConnection("live");
      state.pingTimer = setInterval(() => send({ action: "ping" }), PING_MS);
      if (state.job && state.job.record) {
        send({ action: "subscribe", jobId: state.job.id });
        catchUp(); // whatever was pushed while the connection was down
      }
    });
    socket.addEventListener("message", (message) => {
      let data;
      try {
        data = JSON.parse(message.data);
      } catch {
        return;
      }
      onMessage(data);
    });
    socket.addEventListener("close", () => {
      clearInterval(state.pingTimer);
      state.socket = null;
      state.socketOpen = false;
      setConnection("off");
      if (state.token) {
        state.reconnectTimer = setTimeout(connect, state.reconnectDelay);
        state.reconnectDelay = Math.min(state.reconnectDelay * 2, 15000);
      }
    });
  }

  function onMessage(message) {
    if (!message || typeof message !== "object") return;
    if (message.type === "error") {
      $("connection").title = compact(message.error);
      return;
    }
    if (typeof message.type === "string" && message.type.startsWith("job.")) receive(message);
  }

  /** Without a live WebSocket (or with a gap still open), read the job's events over REST. */
  function startPolling() {
    clearInterval(state.pollTimer);
    state.pollTimer = setInterval(() => {
      const job = state.job;
      if (job && job.record && (!job.finished || job.pending.length) && (!state.socketOpen || job.pending.length)) {
        catchUp();
      }
    }, POLL_MS);
  }

  // ------------------------------------------------------------------------------- events

  /**
   * An event of the job on screen, from the WebSocket or the REST API. `seq` starts at 1 and rises
   * by one, so a repeat (delivery is at least once) is dropped and a gap is filled from
   * GET /jobs/{id}/events?after=N before anything later is shown.
   */
  function receive(event) {
    const job = state.job;
    if (!job || event.jobId !== job.id || !Number.isInteger(event.seq)) return;
    if (job.filling) {
      job.pending.push(event);
      return;
    }
    if (event.seq <= job.lastSeq) return;
    if (event.seq > job.lastSeq + 1) {
      job.pending.push(event);
      catchUp();
      return;
    }
    apply(job, event);
  }

  async function catchUp() {
    const job = state.job;
    if (!job || job.filling) return;
    job.filling = true;
    const answer = await call("GET", `/jobs/${encodeURIComponent(job.id)}/events?after=${job.lastSeq}`);
    job.filling = false;
    if (state.job !== job) return;
    if (!answer.ok || !answer.body || !Array.isArray(answer.body.items)) return; // polling tries again
    for (const event of answer.body.items) {
      if (event.seq === job.lastSeq + 1) apply(job, event);
    }
    const pending = job.pending.sort((a, b) => a.seq - b.seq);
    job.pending = [];
    for (const event of pending) {
      if (event.seq === job.lastSeq + 1) apply(job, event);
      else if (event.seq > job.lastSeq + 1) job.pending.push(event); // still missing: the next poll
    }
  }

  function apply(job, event) {
    job.lastSeq = event.seq;
    job.events.push(event);
    addEventRow(event);
    if (event.type === "job.progress") {
      const step = job.steps.get(event.step) || { name: event.step, retries: 0 };
      if (event.status === "STARTED") {
        if (!step.startedAt || step.status === "RETRYING" || step.endedAt) step.startedAt = event.at;
        step.endedAt = null;
      } else if (event.status === "SUCCEEDED" || event.status === "FAILED") {
        step.endedAt = event.at;
      } else if (event.status === "RETRYING") {
        step.retries = (step.retries || 0) + 1;
      }
      step.status = event.status;
      if (event.detail && Object.keys(event.detail).length) step.detail = event.detail;
      job.steps.set(event.step, step);
      renderSteps(job);
    } else if (event.type === "job.log") {
      appendLog(Array.isArray(event.lines) ? event.lines : []);
    } else if (event.type === "job.finished") {
      job.finished = true;
      job.record = { ...job.record, status: event.status, result: event.result ?? null, error: event.error ?? null };
      renderHeader(job);
      renderOutcome(job);
      refreshJob(job); // the final record: every step's start and end for the timeline
      loadJobs(true);
      loadProjects(true); // a project made, or deleted
      const gone = job.record.type === "delete-project" && event.status === "SUCCEEDED";
      if (gone && state.project && state.project.projectId === job.record.projectId) closeProject();
    }
  }

  function addEventRow(event) {
    const retrying = event.status === "RETRYING";
    const detail =
      event.type === "job.log"
        ? `${(event.lines || []).length} log line(s)`
        : event.type === "job.finished"
          ? compact(event.error || event.result)
          : compact(event.detail);
    $("event-rows").append(
      el(
        "tr",
        { className: retrying ? "retrying" : "", dataset: { seq: String(event.seq) } },
        el("td", {}, event.seq),
        el("td", { title: String(event.at || "") }, formatClock(event.at)),
        el("td", {}, event.type),
        el("td", {}, event.step || ""),
        el("td", {}, event.status ? statusBadge(event.status) : ""),
        el("td", { className: "detail" }, detail),
      ),
    );
  }

  function appendLog(lines) {
    if (!lines.length) return;
    const log = $("log");
    $("log-box").hidden = false;
    log.append(`${lines.map(String).join("\n")}\n`);
    state.job.logLines += lines.length;
    if (state.job.logLines > MAX_LOG_LINES) {
      const text = log.textContent.split("\n");
      log.textContent = text.slice(-MAX_LOG_LINES).join("\n");
      state.job.logLines = MAX_LOG_LINES;
    }
    log.scrollTop = log.scrollHeight;
  }

  // ------------------------------------------------------------------------------- the job view

  function route() {
    const match = /^#\/jobs\/(.+)$/.exec(window.location.hash);
    if (!state.token) return;
    if (match) {
      let id;
      try {
        id = decodeURIComponent(match[1]);
      } catch {
        id = match[1];
      }
      openJob(id);
    } else {
      leaveJob();
      $("job").hidden = true;
      $("job-missing").hidden = true;
    }
  }

  function leaveJob() {
    if (state.job) send({ action: "unsubscribe", jobId: state.job.id });
    state.job = null;
  }

  async function openJob(id) {
    if (state.job && state.job.id === id) return;
    leaveJob();
    const job = {
      id, record: null, lastSeq: 0, filling: false, pending: [], events: [], steps: new Map(),
      finished: false, logLines: 0,
    };
    state.job = job;
    $("job").hidden = true;
    $("job-missing").hidden = true;
    $("steps").replaceChildren();
    $("event-rows").replaceChildren();
    $("timeline").replaceChildren();
    $("log").textContent = "";
    $("log-box").hidden = true;
    $("outcome").hidden = true;
    $("action-answer").textContent = "";
    showProblem($("job-error"), null);
    const answer = await call("GET", `/jobs/${encodeURIComponent(id)}`);
    if (state.job !== job) return;
    if (!answer.ok) {
      state.job = null;
      showProblem($("job-missing-error"), answer);
      $("job-missing").hidden = false;
      return;
    }
    applyRecord(job, answer.body);
    $("job").hidden = false;
    markCurrentRow();
    send({ action: "subscribe", jobId: id });
    await catchUp();
  }

  async function refreshJob(job) {
    const answer = await call("GET", `/jobs/${encodeURIComponent(job.id)}`);
    if (state.job === job && answer.ok) applyRecord(job, answer.body);
  }

  /** The job as GET /jobs/{id} has it; its steps' times are the record's, retries come from events. */
  function applyRecord(job, record) {
    job.record = record;
    job.finished = FINAL.has(record.status);
    for (const step of Array.isArray(record.steps) ? record.steps : []) {
      const known = job.steps.get(step.name) || { name: step.name, retries: 0 };
      job.steps.set(step.name, {
        ...known,
        status: step.status || known.status,
        startedAt: step.startedAt || known.startedAt,
        endedAt: step.endedAt ?? known.endedAt,
        detail: step.detail || known.detail,
      });
    }
    renderHeader(job);
    renderSteps(job);
    renderOutcome(job);
    updateRow(record);
  }

  function renderHeader(job) {
    const record = job.record;
    $("job-id").textContent = record.jobId;
    setStatus($("job-status"), record.status);
    $("job-type-value").textContent = record.type || "—";
    $("job-project").textContent = record.projectId || "—";
    $("job-created").textContent = formatTime(record.createdAt);
    const execution = $("job-execution");
    execution.replaceChildren();
    const consoleUrl = record.links && record.links.console;
    if (typeof consoleUrl === "string" && consoleUrl.startsWith("https://")) {
      execution.append(
        el("a", { href: consoleUrl, target: "_blank", rel: "noopener noreferrer", id: "execution-link" },
          "Step Functions console"),
        " ",
      );
    }
    if (record.executionArn) execution.append(el("code", { className: "arn" }, record.executionArn));
    $("cancel-job").disabled = record.status !== "RUNNING";
    $("retry-job").disabled = !RETRYABLE.has(record.status);
  }

  function renderSteps(job) {
    const list = $("steps");
    list.replaceChildren();
    const steps = [...job.steps.values()].sort((a, b) => String(a.startedAt || "~").localeCompare(String(b.startedAt || "~")));
    for (const step of steps) {
      const ended = step.endedAt ? Date.parse(step.endedAt) - Date.parse(step.startedAt) : NaN;
      list.append(
        el(
          "li",
          { dataset: { step: step.name, status: String(step.status || "") } },
          el("span", { className: "step-name" }, step.name),
          " ",
          statusBadge(step.status),
          step.retries ? el("span", { className: "retries" }, ` retried ${step.retries}×`) : null,
          Number.isFinite(ended) ? el("span", { className: "duration" }, ` ${formatDuration(ended)}`) : null,
          step.detail ? el("span", { className: "detail" }, ` ${compact(step.detail)}`) : null,
        ),
      );
    }
    renderTimeline(job, steps);
  }

  /** Each step as a bar on the job's time axis, with its start, end and duration. */
  function renderTimeline(job, steps) {
    const box = $("timeline");
    box.replaceChildren();
    const times = steps.flatMap((s) => [Date.parse(s.startedAt), Date.parse(s.endedAt)]).filter(Number.isFinite);
    const created = Date.parse(job.record && job.record.createdAt);
    if (Number.isFinite(created)) times.push(created);
    if (!times.length) return;
    const start = Math.min(...times);
    const end = job.finished ? Math.max(...times) : Math.max(Date.now(), ...times);
    const span = Math.max(end - start, 1);
    box.append(el("div", { className: "axis" }, `${formatTime(new Date(start).toISOString())} → ${formatDuration(end - start)}`));
    for (const step of steps) {
      const from = Date.parse(step.startedAt);
      if (!Number.isFinite(from)) continue;
      const to = Number.isFinite(Date.parse(step.endedAt)) ? Date.parse(step.endedAt) : end;
      const bar = el("span", { className: "span", dataset: { status: String(step.status || "") } });
      // CSSOM writes (not style attributes) are allowed under style-src 'self'.
      bar.style.marginLeft = `${((from - start) / span) * 100}%`;
      bar.style.width = `${Math.max(((to - from) / span) * 100, 0.5)}%`;
      box.append(
        el(
          "div",
          { className: "lane", dataset: { step: step.name } },
          el("span", { className: "lane-name" }, step.name),
          el("span", { className: "track" }, bar),
          el(
            "span",
            { className: "lane-times" },
            `${formatClock(step.startedAt)} – ${step.endedAt ? formatClock(step.endedAt) : "running"} · `
              + `${step.endedAt ? formatDuration(to - from) : "…"}${step.retries ? ` · ${step.retries} retry` : ""}`,
          ),
        ),
      );
    }
  }

  function renderOutcome(job) {
    const record = job.record;
    if (!FINAL.has(record.status) || (record.result == null && record.error == null)) {
      $("outcome").hidden = true;
      return;
    }
    $("outcome-title").textContent = record.error ? "Error" : "Result";
    $("outcome-body").textContent = JSON.stringify(record.error || record.result, null, 2);
    $("outcome").dataset.kind = record.error ? "error" : "result";
    $("outcome").hidden = false;
  }

  async function jobAction(method, suffix, accepted) {
    const job = state.job;
    if (!job) return;
    $("action-answer").textContent = "…";
    showProblem($("job-error"), null);
    const answer = await call(method, `/jobs/${encodeURIComponent(job.id)}${suffix}`);
    if (state.job !== job) return;
    if (answer.ok) {
      $("action-answer").textContent = `${accepted} (${answer.status})`;
      await refreshJob(job);
      if (!job.finished) send({ action: "subscribe", jobId: job.id }); // a retried job runs again
      catchUp();
      loadJobs(true);
    } else {
      $("action-answer").textContent = "";
      showProblem($("job-error"), answer);
    }
  }

  // ------------------------------------------------------------------------------- the job list

  function jobRow(item) {
    return el(
      "tr",
      { dataset: { jobId: item.jobId } },
      el("td", {}, formatTime(item.createdAt)),
      el("td", {}, item.type),
      el("td", {}, item.projectId || "—"),
      el("td", { className: "row-status" }, statusBadge(item.status)),
      el("td", {}, jobLink(item.jobId, item.jobId.length > 12 ? `${item.jobId.slice(0, 8)}…` : item.jobId)),
    );
  }

  function rowOf(jobId) {
    return [...$("job-rows").children].find((row) => row.dataset.jobId === jobId) || null;
  }

  function updateRow(record) {
    const row = rowOf(record.jobId);
    if (row) row.querySelector(".row-status").replaceChildren(statusBadge(record.status));
  }

  function markCurrentRow() {
    for (const row of $("job-rows").children) {
      row.classList.toggle("current", Boolean(state.job) && row.dataset.jobId === state.job.id);
    }
  }

  async function loadJobs(reset) {
    if (reset) {
      state.jobsGeneration += 1;
      state.jobsCursor = null;
    }
    const generation = state.jobsGeneration;
    const query = new URLSearchParams({ limit: "20" });
    const status = $("status-filter").value;
    if (status) query.set("status", status);
    if (!reset && state.jobsCursor) query.set("cursor", state.jobsCursor);
    const answer = await call("GET", `/jobs?${query}`);
    if (generation !== state.jobsGeneration || !state.token) return; // a newer listing is on its way
    if (!answer.ok) {
      showProblem($("jobs-error"), answer);
      return;
    }
    showProblem($("jobs-error"), null);
    const rows = $("job-rows");
    if (reset) rows.replaceChildren();
    for (const item of answer.body.items || []) rows.append(jobRow(item));
    state.jobsCursor = answer.body.nextCursor || null;
    $("more-jobs").hidden = !state.jobsCursor;
    $("jobs-empty").hidden = rows.children.length > 0;
    markCurrentRow();
  }

  // ------------------------------------------------------------------------------- the start form

  function exampleFor(type) {
    return JSON.stringify(EXAMPLES[type] || {}, null, 2);
  }

  function onTypeChange(previous) {
    const type = $("job-type").value;
    const params = $("params");
    if (!params.value.trim() || params.value === exampleFor(previous)) params.value = exampleFor(type);
    const project = $("project-id");
    project.disabled = type === "create-project";
    project.placeholder = type === "create-project" ? "made by the job" : "prj-… (required)";
    $("start-hint").textContent = type === "create-project" ? "" : "needs the project's id";
  }

  async function startJob(event) {
    event.preventDefault();
    const box = $("start-error");
    const type = $("job-type").value;
    let params;
    try {
      params = JSON.parse($("params").value || "{}");
    } catch (error) {
      showProblem(box, {
        status: 0,
        body: { error: { code: "ValidationError", message: "params is not JSON", details: [{ path: "params", message: String(error.message) }] } },
      });
      return;
    }
    const body = { type, params };
    const projectId = $("project-id").value.trim();
    if (projectId && type !== "create-project") body.projectId = projectId;
    const button = $("start-button");
    button.disabled = true;
    const answer = await call("POST", "/jobs", body);
    button.disabled = false;
    if (!answer.ok) {
      showProblem(box, answer);
      return;
    }
    showProblem(box, null);
    loadJobs(true);
    window.location.hash = `#/jobs/${encodeURIComponent(answer.body.jobId)}`;
  }

  // ------------------------------------------------------------------------------- projects

  function projectRow(item) {
    const open = el("button", { type: "button", className: "link", title: `open ${item.projectId}` }, item.name || "—");
    open.addEventListener("click", () => selectProject(item.projectId));
    return el(
      "tr",
      { className: "project-row", dataset: { projectId: item.projectId } },
      el("td", {}, open),
      el("td", { className: "job-link" }, item.projectId),
      el("td", {}, statusBadge(item.status)),
      el("td", {}, formatTime(item.createdAt)),
    );
  }

  /** GET /projects, a page at a time (reset: from the first page); like loadJobs. */
  async function loadProjects(reset) {
    if (reset) {
      state.projectsGeneration += 1;
      state.projectsCursor = null;
    }
    const generation = state.projectsGeneration;
    const query = new URLSearchParams({ limit: String(PROJECTS_PAGE) });
    if (!reset && state.projectsCursor) query.set("cursor", state.projectsCursor);
    const answer = await call("GET", `/projects?${query}`);
    if (generation !== state.projectsGeneration || !state.token) return; // a newer listing is on its way
    if (!answer.ok) {
      showProblem($("projects-error"), answer);
      return;
    }
    showProblem($("projects-error"), null);
    const rows = $("project-rows");
    if (reset) rows.replaceChildren();
    for (const item of answer.body.items || []) rows.append(projectRow(item));
    state.projectsCursor = answer.body.nextCursor || null;
    $("more-projects").hidden = !state.projectsCursor;
    $("projects-empty").hidden = rows.children.length > 0;
  }

  /** Show a project's actions; it also becomes the start form's project. */
  async function selectProject(projectId) {
    const answer = await call("GET", `/projects/${encodeURIComponent(projectId)}`);
    if (!answer.ok) {
      showProblem($("projects-error"), answer);
      return;
    }
    const project = answer.body;
    state.project = project;
    $("project-name").textContent = project.name || "—";
    $("project-current").textContent = project.projectId;
    $("delete-expected").textContent = project.name || project.projectId;
    $("download-answer").replaceChildren();
    hideDeleteConfirm();
    showProblem($("project-error"), null);
    if ($("job-type").value !== "create-project") $("project-id").value = project.projectId;
    $("project").hidden = false;
  }

  function closeProject() {
    state.project = null;
    $("project").hidden = true;
  }

  /** POST /jobs on the selected project; the job is then shown (live) in the job view. */
  async function startProjectJob(type, params, button) {
    const project = state.project;
    if (!project) return;
    showProblem($("project-error"), null);
    if (button) button.disabled = true;
    const answer = await call("POST", "/jobs", { type, projectId: project.projectId, params });
    if (button) button.disabled = false;
    if (!answer.ok) {
      showProblem($("project-error"), answer);
      return;
    }
    loadJobs(true);
    window.location.hash = `#/jobs/${encodeURIComponent(answer.body.jobId)}`;
  }

  function onPull(event) {
    event.preventDefault();
    const params = { strategy: $("pull-strategy").value };
    const branch = $("pull-branch").value.trim();
    if (branch) params.branch = branch;
    startProjectJob("git-pull", params, $("pull-button"));
  }

  function onPush(event) {
    event.preventDefault();
    const params = {};
    const branches = $("push-branches").value.split(/[\s,]+/).filter(Boolean);
    if (branches.length) params.branches = branches;
    if ($("push-tags").checked) params.tags = true;
    startProjectJob("git-push", params, $("push-button"));
  }

  function onBranch(event) {
    event.preventDefault();
    const flow = $("branch-flow").value;
    const params = { name: $("branch-name").value.trim() };
    const from = $("branch-from").value.trim();
    if (flow) params.flow = flow;
    else if (from) params.from = from;
    startProjectJob("git-branch", params, $("branch-button"));
  }

  function onBranchFlowChange() {
    const flow = $("branch-flow").value;
    $("branch-from").disabled = Boolean(flow); // git-flow's own base: develop, or main for a hotfix
    $("branch-name").placeholder = flow ? `name (the branch is ${flow.split("-")[0]}/<name>)` : "name";
  }

  /** A download ticket for the path, then the browser's own download of the pre-signed URL. */
  async function onDownload(event) {
    event.preventDefault();
    const project = state.project;
    if (!project) return;
    const box = $("download-answer");
    box.replaceChildren("…");
    showProblem($("project-error"), null);
    const path = $("download-path").value.trim();
    const answer = await call("POST", `/projects/${encodeURIComponent(project.projectId)}/downloads`, { path });
    if (state.project !== project) return;
    if (!answer.ok) {
      box.replaceChildren();
      showProblem($("project-error"), answer);
      return;
    }
    const ticket = answer.body;
    if (typeof ticket.url !== "string" || !/^https?:\/\//.test(ticket.url)) {
      box.replaceChildren("the download URL is not http(s): not opened");
      return;
    }
    // S3 answers with Content-Disposition: attachment (signed into the URL), so following the link
    // saves the file and leaves this page as it is; no-referrer keeps this page's address from S3.
    const link = el("a", { href: ticket.url, id: "download-link", rel: "noopener noreferrer" }, "save again");
    box.replaceChildren(
      `${ticket.path}: ${ticket.size} bytes, last modified ${formatTime(ticket.lastModified)} · `,
      link,
      ` (until ${formatTime(ticket.expiresAt)})`,
    );
    link.click();
  }

  function hideDeleteConfirm() {
    $("delete-confirm").hidden = true;
    $("delete-name").value = "";
    $("delete-confirm-button").disabled = true;
  }

  /** DELETE /projects/{id} once its name is typed; the delete-project job is then shown live. */
  async function onDelete(event) {
    event.preventDefault();
    const project = state.project;
    if (!project || $("delete-name").value !== $("delete-expected").textContent) return;
    $("delete-confirm-button").disabled = true;
    const answer = await call("DELETE", `/projects/${encodeURIComponent(project.projectId)}`);
    if (!answer.ok) {
      $("delete-confirm-button").disabled = false;
      showProblem($("project-error"), answer);
      return;
    }
    hideDeleteConfirm();
    loadJobs(true);
    loadProjects(true); // it is listed as deleting until its job ends
    window.location.hash = `#/jobs/${encodeURIComponent(answer.body.jobId)}`;
  }

  function wireProjects() {
    $("refresh-projects").addEventListener("click", () => loadProjects(true));
    $("more-projects").addEventListener("click", () => loadProjects(false));
    $("close-project").addEventListener("click", closeProject);
    $("pull-form").addEventListener("submit", onPull);
    $("push-form").addEventListener("submit", onPush);
    $("branch-form").addEventListener("submit", onBranch);
    $("branch-flow").addEventListener("change", onBranchFlowChange);
    $("download-form").addEventListener("submit", onDownload);
    $("sync-out").addEventListener("click", () => startProjectJob("sync", { direction: "efs-to-s3" }, $("sync-out")));
    $("delete-project").addEventListener("click", () => {
      $("delete-confirm").hidden = false;
      $("delete-name").focus();
    });
    $("delete-name").addEventListener("input", () => {
      $("delete-confirm-button").disabled = $("delete-name").value !== $("delete-expected").textContent;
    });
    $("delete-cancel").addEventListener("click", hideDeleteConfirm);
    $("delete-confirm").addEventListener("submit", onDelete);
  }

  // ------------------------------------------------------------------------------- wiring

  async function main() {
    $("sign-in-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const token = $("token").value.trim().replace(/^Bearer\s+/i, "");
      if (token) signIn(token);
    });
    $("sign-out").addEventListener("click", () => signOut(null));
    let previousType = $("job-type").value;
    $("job-type").addEventListener("change", () => {
      onTypeChange(previousType);
      previousType = $("job-type").value;
    });
    onTypeChange(previousType);
    $("start-form").addEventListener("submit", startJob);
    $("status-filter").addEventListener("change", () => loadJobs(true));
    $("refresh-jobs").addEventListener("click", () => loadJobs(true));
    $("more-jobs").addEventListener("click", () => loadJobs(false));
    $("cancel-job").addEventListener("click", () => jobAction("DELETE", "", "Cancel accepted"));
    $("retry-job").addEventListener("click", () => jobAction("POST", "/retry", "Retry accepted"));
    wireProjects();
    window.addEventListener("hashchange", route);
    await loadConfig();
    const saved = sessionStorage.getItem(TOKEN_KEY);
    if (saved) await signIn(saved);
    else showSignIn(null);
    document.body.dataset.ready = "true";
  }

  main();
})();
