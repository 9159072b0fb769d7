// livemap returns page: lists the store's returns (GET /api/returns) and moves each on
// (POST /api/orders/{id}/return) through the dispatcher's session. The words come in the page config.
(function () {
  "use strict";
  const cfg = JSON.parse(document.getElementById("rt-config").textContent);
  const S = cfg.strings;
  const $ = (id) => document.getElementById(id);
  const { el, fill, photoLink } = window.livemapOffice;
  const stamp = new Intl.DateTimeFormat(cfg.lang, {
    timeZone: cfg.timezone, day: "numeric", month: "short", hour: "2-digit", minute: "2-digit",
  });
  // A status the page has no words for (one added to the API later) still shows, as the API names it.
  const statusName = (status) => S[`st_${status}`] || status;

  const api = window.livemapOffice.client(cfg.csrf, S.offline);

  // The server's own message is English: the ones a dispatcher can act on are said in the page's language.
  function explain(err) {
    if (err.offline) return S.offline;
    if (err.code === "illegal_return_step") return S.moved_on;
    if (err.code === "driver_required") return S.driver_required;
    return fill(S.act_failed, { error: err.message });
  }

  function stepList(ret) {
    const steps = el("ol", "rt-steps");
    steps.setAttribute("aria-label", S.steps);
    for (const s of ret.steps) {
      const when = stamp.format(new Date(s.at));
      steps.append(el("li", "", `${statusName(s.status)} · ${when}${s.note ? " · " + s.note : ""}`));
    }
    return steps;
  }

  function driverPicker() {
    const driver = el("select");
    driver.setAttribute("aria-label", S.driver);
    for (const [id, name] of Object.entries(cfg.drivers)) driver.append(new Option(name, id));
    if (!driver.options.length) driver.append(new Option(S.no_drivers, ""));
    return driver;
  }

  function actions(ret, box) {
    const form = el("form", "rt-act");
    const note = el("input");
    Object.assign(note, { type: "text", placeholder: S.note, maxLength: 1000 });
    note.setAttribute("aria-label", S.note_label);
    form.append(note);
    const driver = ret.allowed.includes("pickup") ? driverPicker() : null;
    if (driver) form.append(driver);
    const result = el("p", "rt-result");
    result.setAttribute("role", "status");
    for (const status of ret.allowed) {
      const b = el("button", "", S[`do_${status}`] || status);
      b.type = "button";
      b.dataset.status = status;
      b.disabled = status === "pickup" && !(driver && driver.value);
      b.addEventListener("click", async () => {
        const body = { status, note: note.value || null };
        if (status === "pickup") body.driver_id = driver && driver.value;
        try {
          box.replaceWith(card(await api("POST", `/api/orders/${encodeURIComponent(ret.order_id)}/return`, body)));
        } catch (err) {
          result.textContent = explain(err);
        }
      });
      form.append(b);
    }
    return [form, result];
  }

  function card(ret) {
    const box = el("article", "an-card rt-card");
    box.dataset.order = ret.order_id;
    box.dataset.status = ret.status;
    box.append(el("h3", "", `${fill(S.order, { id: ret.order_id })} · ${ret.reason}`),
      el("p", "an-value rt-state", statusName(ret.status)));
    if (ret.note) box.append(el("p", "an-sub", `“${ret.note}”`));
    if (ret.photo) box.append(photoLink(`/api/orders/${encodeURIComponent(ret.order_id)}/return/photo`, S.photo));
    box.append(stepList(ret));
    if (ret.allowed.length) box.append(...actions(ret, box));
    return box;
  }

  async function load() {
    const status = $("rt-status").value;
    $("rt-status-line").textContent = S.loading;
    try {
      const data = await api("GET", "/api/returns" + (status ? `?status=${status}` : ""));
      $("rt-list").replaceChildren(...data.returns.map(card));
      $("rt-status-line").textContent = data.returns.length ? "" : S.empty;
    } catch (err) {
      $("rt-status-line").textContent = err.offline ? S.offline : fill(S.failed, { error: err.message });
    }
  }

  $("rt-status").addEventListener("change", load);
  load();
})();
