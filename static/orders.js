// livemap orders page: the store's orders newest first (GET /api/orders), filtered and searched, each
// assigned or reassigned from its card (POST /api/orders/{id}/assign) through the dispatcher's session.
(function () {
  "use strict";
  const cfg = JSON.parse(document.getElementById("or-config").textContent);
  const S = cfg.strings;
  const $ = (id) => document.getElementById(id);
  const { el, fill, photoLink } = window.livemapOffice;
  const api = window.livemapOffice.client(cfg.csrf, S.offline);
  const stamp = new Intl.DateTimeFormat(cfg.lang, {
    timeZone: cfg.timezone, day: "numeric", month: "short", hour: "2-digit", minute: "2-digit",
  });
  const clock = new Intl.DateTimeFormat(cfg.lang, { timeZone: cfg.timezone, hour: "2-digit", minute: "2-digit" });
  const DONE = new Set([...cfg.delivered, ...cfg.final]); // delivered or over: nobody to send

  const SOURCES = { woocommerce: "WooCommerce", shopify: "Shopify" };
  const stageName = (stage) => cfg.stages[stage] || stage;
  const driverName = (id) => cfg.drivers[id] || id;
  let next = null; // the cursor of the page after the ones shown
  let generation = 0; // a newer query's answer wins over an older one still on its way

  function badges(row) {
    const line = el("p", "or-badges");
    line.append(el("span", `or-stage or-stage-${row.stage}`, stageName(row.stage)));
    if (row.late) line.append(el("span", "or-badge or-late", S.late));
    if (row.source) line.append(el("span", "or-badge", fill(S.imported, { source: SOURCES[row.source] || row.source })));
    if (row.return_leg) line.append(el("span", "or-badge", S.return_leg));
    return line;
  }

  function times(row) {
    const parts = [fill(S.placed, { time: stamp.format(new Date(row.placed_at)) })];
    if (row.promised_by) parts.push(fill(S.promised, { time: stamp.format(new Date(row.promised_by)) }));
    if (row.eta_at && row.live) parts.push(fill(S.eta, { time: clock.format(new Date(row.eta_at)) }));
    return el("p", "an-sub", parts.join(" · "));
  }

  // The driver picker and its button: on an order still to deliver (or a return to collect).
  function assigner(row, box) {
    const form = el("form", "rt-act or-assign");
    const pick = el("select");
    pick.setAttribute("aria-label", S.driver);
    const drivers = Object.entries(cfg.drivers);
    // An order without a driver starts on "Choose a driver": a click on Assign never sends whoever is listed first.
    if (!drivers.length) pick.append(new Option(S.no_drivers, ""));
    else if (!row.driver_id) pick.append(Object.assign(new Option(S.pick_driver, "", true, true), { disabled: true }));
    for (const [id, name] of drivers) pick.append(new Option(name, id, false, id === row.driver_id));
    const button = el("button", "", row.driver_id ? S.reassign : S.assign);
    button.type = "submit";
    const result = el("p", "rt-result");
    result.setAttribute("role", "status");
    form.append(pick, button);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      if (!pick.value) return;
      button.disabled = true;
      try {
        const v = await api("POST", `/api/orders/${encodeURIComponent(row.order_id)}/assign`, { driver_id: pick.value });
        const updated = { ...row, stage: v.stage, live: v.live, driver_id: v.driver_id, return_leg: v.return_leg };
        const fresh = card(updated);
        fresh.querySelector(".rt-result").textContent = fill(S.assigned, { driver: driverName(v.driver_id) });
        box.replaceWith(fresh);
      } catch (err) {
        result.textContent = fill(S.assign_failed, { error: err.offline ? S.offline : err.message });
        button.disabled = false;
      }
    });
    return [form, result];
  }

  // Proof of delivery: who took the parcel, and the driver's photo (through the session cookie).
  function proof(row, p) {
    const out = [];
    if (p.recipient) out.push(el("p", "an-sub", fill(S.received_by, { name: p.recipient })));
    if (p.photo) out.push(photoLink(`/api/orders/${encodeURIComponent(row.order_id)}/proof/photo`, S.proof_photo));
    return out;
  }

  // The order's history, proof and rating, read when the dispatcher asks for them.
  function details(row) {
    const box = el("details", "or-details");
    box.append(el("summary", "", S.details));
    box.addEventListener("toggle", async () => {
      if (!box.open || box.dataset.loaded) return;
      box.dataset.loaded = "1";
      const v = await api("GET", `/api/orders/${encodeURIComponent(row.order_id)}`).catch(() => null);
      if (!v) { delete box.dataset.loaded; return; }
      const list = el("ol", "rt-steps");
      list.setAttribute("aria-label", S.history);
      for (const h of v.history) {
        list.append(el("li", "", `${stageName(h.stage)} · ${stamp.format(new Date(h.at))}${h.note ? " · " + h.note : ""}`));
      }
      box.append(list);
      if (v.proof) box.append(...proof(row, v.proof));
      if (v.feedback) {
        const said = v.feedback.comment ? ` · “${v.feedback.comment}”` : "";
        box.append(el("p", "an-sub", fill(S.rating, { n: v.feedback.rating }) + said));
      }
    });
    return box;
  }

  function card(row) {
    const box = el("article", "an-card rt-card or-card");
    box.dataset.order = row.order_id;
    box.append(el("h3", "", [fill(S.order, { id: row.order_id }), row.customer].filter(Boolean).join(" · ")),
      badges(row));
    if (row.address) box.append(el("p", "an-sub", row.address));
    box.append(times(row), el("p", "or-driver", row.driver_id ? `${S.driver}: ${driverName(row.driver_id)}` : S.no_driver));
    if (!DONE.has(row.stage) || row.return_leg) box.append(...assigner(row, box));
    else box.append(el("p", "rt-result"));
    box.append(details(row));
    return box;
  }

  async function load(more) {
    const mine = ++generation;
    const params = new URLSearchParams({ show: $("or-show").value, limit: "50" });
    const q = $("or-q").value.trim();
    if (q) params.set("q", q);
    if (more && next) params.set("cursor", next);
    const status = $("or-status");
    if (!more) status.textContent = S.loading;
    try {
      const page = await api("GET", `/api/orders?${params}`);
      if (mine !== generation) return;
      if (!more) $("or-list").replaceChildren();
      $("or-list").append(...page.orders.map(card));
      next = page.next;
      $("or-more").hidden = !next;
      status.textContent = $("or-list").children.length ? "" : S.empty;
    } catch (err) {
      if (mine === generation) status.textContent = err.offline ? S.offline : fill(S.failed, { error: err.message });
    }
  }

  let typing = null;
  $("or-q").addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => load(false), 300);
  });
  $("or-show").addEventListener("change", () => load(false));
  $("or-filter").addEventListener("submit", (ev) => { ev.preventDefault(); load(false); });
  $("or-more").addEventListener("click", () => load(true));
  load(false);
})();
