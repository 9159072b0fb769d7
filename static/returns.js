// livemap returns page: lists the store's returns (GET /api/returns) and moves each on
// (POST /api/orders/{id}/return) through the dispatcher's session.
(function () {
  "use strict";
  const cfg = JSON.parse(document.getElementById("rt-config").textContent);
  const $ = (id) => document.getElementById(id);
  const stamp = new Intl.DateTimeFormat("en", {
    timeZone: cfg.timezone, day: "numeric", month: "short", hour: "2-digit", minute: "2-digit",
  });
  const ACTIONS = { approved: "Approve", rejected: "Reject", pickup: "Send a driver", dropoff: "Customer drops it off",
    received: "Mark received", refunded: "Mark refunded" };

  async function api(method, path, body) {
    const headers = { "X-CSRF-Token": cfg.csrf };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin" });
    if (r.status === 401) location.reload();
    const data = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(data.error ? data.error.message : `HTTP ${r.status}`);
    return data;
  }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function card(ret) {
    const box = el("article", "an-card rt-card");
    box.dataset.order = ret.order_id;
    box.append(el("h3", "", `Order ${ret.order_id} · ${ret.reason}`), el("p", "an-value rt-state", ret.status));
    if (ret.note) box.append(el("p", "an-sub", `“${ret.note}”`));
    const steps = el("ol", "rt-steps");
    for (const s of ret.steps) {
      steps.append(el("li", "", `${s.status} · ${stamp.format(new Date(s.at))}${s.note ? " · " + s.note : ""}`));
    }
    box.append(steps);
    if (!ret.allowed.length) return box;
    const form = el("form", "rt-act");
    const note = el("input");
    Object.assign(note, { type: "text", placeholder: "Note to the customer (optional)", maxLength: 1000 });
    note.setAttribute("aria-label", "Note to the customer");
    form.append(note);
    let driver = null;
    if (ret.allowed.includes("pickup")) {
      driver = el("select");
      driver.setAttribute("aria-label", "Driver for the pickup");
      for (const [id, name] of Object.entries(cfg.drivers)) driver.append(new Option(name, id));
      if (!driver.options.length) driver.append(new Option("No drivers yet", ""));
      form.append(driver);
    }
    const result = el("p", "rt-result");
    result.setAttribute("role", "status");
    for (const status of ret.allowed) {
      const b = el("button", "", ACTIONS[status] || status);
      b.type = "button";
      b.dataset.status = status;
      b.disabled = status === "pickup" && !(driver && driver.value);
      b.addEventListener("click", async () => {
        const body = { status, note: note.value || null };
        if (status === "pickup") body.driver_id = driver && driver.value;
        try {
          box.replaceWith(card(await api("POST", `/api/orders/${encodeURIComponent(ret.order_id)}/return`, body)));
        } catch (err) {
          result.textContent = err.message;
        }
      });
      form.append(b);
    }
    box.append(form, result);
    return box;
  }

  async function load() {
    const status = $("rt-status").value;
    $("rt-status-line").textContent = "Loading…";
    try {
      const data = await api("GET", "/api/returns" + (status ? `?status=${status}` : ""));
      $("rt-list").replaceChildren(...data.returns.map(card));
      $("rt-status-line").textContent = data.returns.length ? "" : "No returns here.";
    } catch (err) {
      $("rt-status-line").textContent = `The returns could not be loaded (${err.message}).`;
    }
  }

  $("rt-status").addEventListener("change", load);
  load();
})();
