// livemap analytics page: asks GET /api/analytics for the chosen period (session cookie) and draws it
// with Chart.js (static/vendor/chartjs). No framework, no build step: the words come in the page config.
(function () {
  "use strict";
  const cfg = JSON.parse(document.getElementById("an-config").textContent);
  const S = cfg.strings;
  const $ = (id) => document.getElementById(id);
  const fmt = (text, vars) => text.replace(/\{(\w+)\}/g, (_, k) => (k in vars ? vars[k] : ""));
  const number = new Intl.NumberFormat(cfg.lang, { maximumFractionDigits: 1 });
  const percent = new Intl.NumberFormat(cfg.lang, { style: "percent", maximumFractionDigits: 1 });
  const dayLabel = new Intl.DateTimeFormat(cfg.lang, { day: "numeric", month: "short", timeZone: "UTC" });
  const COLORS = { blue: "#2563eb", green: "#15803d", amber: "#b7791f", grey: "#9aa0a6", red: "#c2410c" };
  const charts = {};

  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.color = "#4a5260";
  Chart.defaults.maintainAspectRatio = false;

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    if (seconds < 90) return fmt(S.unit_s, { n: number.format(seconds) });
    if (seconds < 5400) return fmt(S.unit_min, { n: number.format(seconds / 60) });
    if (seconds < 172800) return fmt(S.unit_h, { n: number.format(seconds / 3600) });
    return fmt(S.unit_d, { n: number.format(seconds / 86400) });
  }

  const share = (x) => (x === null || x === undefined ? "–" : percent.format(x));

  function isoDay(date) {
    return date.toISOString().slice(0, 10);
  }

  function daysBefore(day, n) {
    const d = new Date(day + "T00:00:00Z");
    d.setUTCDate(d.getUTCDate() - n);
    return isoDay(d);
  }

  // --- cards -------------------------------------------------------------------------------------
  function card(title, value, sub) {
    const el = document.createElement("article");
    el.className = "an-card";
    for (const [tag, cls, text] of [["h3", "", title], ["p", "an-value", value], ["p", "an-sub", sub || ""]]) {
      const part = document.createElement(tag);
      if (cls) part.className = cls;
      part.textContent = text;
      el.append(part);
    }
    return el;
  }

  function fillCards(a) {
    const v = a.views;
    $("an-cards").replaceChildren(
      card(S.orders, number.format(a.orders)),
      card(S.customers, number.format(a.unique_customers)),
      card(S.frequency, a.purchase_frequency === null ? "–" : number.format(a.purchase_frequency)),
      card(S.on_time, share(a.on_time.share), fmt(S.on_time_of, { n: a.on_time.promised })),
      card(S.first_attempt, share(a.attempts.first_attempt_share),
        fmt(S.failed_attempts, { n: a.attempts.failed_attempts })),
      card(S.returns, share(a.returns.rate), fmt(S.of_delivered, { n: a.attempts.delivered })),
      card(S.rating, a.ratings.average === null ? "–" : number.format(a.ratings.average) + " ★",
        fmt(S.ratings_n, { n: a.ratings.count })),
      card(S.views_per_order, v.per_order === null ? "–" : number.format(v.per_order), fmt(S.views_n, { n: v.views })),
      card(S.time_on_page, duration(v.time_on_page.median_s)),
      card(S.phones, share(v.phone_share)),
    );
  }

  // --- charts ------------------------------------------------------------------------------------
  function draw(id, config) {
    if (charts[id]) charts[id].destroy();
    charts[id] = new Chart($(id), config);
  }

  // Duration axes step by round amounts (1 min, 15 min, 1 h...), not by Chart.js's decimal ones.
  const STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800];

  function durationAxis(values) {
    const top = Math.max(1, ...values.filter((v) => v !== null));
    const step = STEPS.find((s) => top / s <= 5) || Math.ceil(top / 5 / 86400) * 86400;
    return { beginAtZero: true, ticks: { stepSize: step, callback: (value) => duration(value) } };
  }

  const durationTip = { callbacks: { label: (c) => `${c.dataset.label}: ${duration(c.parsed.x ?? c.parsed.y)}` } };

  function drawCharts(a) {
    const labels = a.daily.days.map((d) => dayLabel.format(new Date(d + "T00:00:00Z")));
    draw("an-daily", {
      type: "bar",
      data: { labels, datasets: [
        { label: S.orders, data: a.daily.orders, backgroundColor: COLORS.blue },
        { label: S.delivered, data: a.daily.delivered, backgroundColor: COLORS.green },
      ] },
      options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
    });
    draw("an-ontime", {
      type: "line",
      data: { labels, datasets: [{ label: S.on_time, data: a.daily.on_time_share, borderColor: COLORS.green,
        backgroundColor: COLORS.green, spanGaps: true, tension: 0.25 }] },
      options: { plugins: { legend: { display: false }, tooltip: { callbacks: { label: (c) => share(c.parsed.y) } } },
        scales: { y: { min: 0, max: 1, ticks: { callback: (value) => share(value) } } } },
    });
    const stages = a.stages.filter((s) => s.time.n > 0);
    draw("an-stages", {
      type: "bar",
      data: { labels: stages.map((s) => cfg.stages[s.stage] || s.stage), datasets: [
        { label: S.median, data: stages.map((s) => s.time.median_s), backgroundColor: COLORS.blue },
        { label: S.p90, data: stages.map((s) => s.time.p90_s), backgroundColor: COLORS.grey },
      ] },
      options: { indexAxis: "y", scales: { x: durationAxis(stages.map((s) => s.time.p90_s)) },
        plugins: { tooltip: durationTip } },
    });
    draw("an-eta", {
      type: "bar",
      data: { labels: a.eta_truth.map((e) => fmt(S.eta_before, { n: e.minutes_before })), datasets: [
        { label: S.median, data: a.eta_truth.map((e) => e.error.median_s), backgroundColor: COLORS.amber },
        { label: S.p90, data: a.eta_truth.map((e) => e.error.p90_s), backgroundColor: COLORS.grey },
      ] },
      options: { scales: { y: durationAxis(a.eta_truth.map((e) => e.error.p90_s)) }, plugins: { tooltip: durationTip } },
    });
    const scored = a.eta_truth.some((e) => e.error.n > 0);
    $("an-eta").parentElement.hidden = !scored;
    $("an-eta-none").hidden = scored;
    draw("an-stars", {
      type: "bar",
      data: { labels: ["1 ★", "2 ★", "3 ★", "4 ★", "5 ★"], datasets: [{ label: S.stars,
        data: ["1", "2", "3", "4", "5"].map((r) => a.ratings.distribution[r]), backgroundColor: COLORS.amber }] },
      options: { plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
    });
    draw("an-devices", {
      type: "doughnut",
      data: { labels: [S.phone, S.desktop], datasets: [{ data: [a.views.phone, a.views.desktop],
        backgroundColor: [COLORS.blue, COLORS.grey] }] },
    });
  }

  function fillComments(a) {
    const items = a.ratings.latest.map((c) => {
      const li = document.createElement("li");
      const stars = document.createElement("span");
      stars.className = "an-stars";
      stars.textContent = "★".repeat(c.rating) + "☆".repeat(5 - c.rating);
      li.append(stars, document.createTextNode(`#${c.order_id}: ${c.comment}`));
      return li;
    });
    if (!items.length) {
      const li = document.createElement("li");
      li.textContent = S.no_comments;
      items.push(li);
    }
    $("an-comments").replaceChildren(...items);
  }

  // --- period ------------------------------------------------------------------------------------
  async function load() {
    const from = $("an-from").value;
    const to = $("an-to").value;
    $("an-status").textContent = S.loading;
    try {
      const r = await fetch(`/api/analytics?from=${from}&to=${to}`, { cache: "no-store" });
      const body = await r.json();
      if (!r.ok) throw new Error(body.error ? body.error.message : `HTTP ${r.status}`);
      fillCards(body);
      drawCharts(body);
      fillComments(body);
      $("an-status").textContent = body.orders ? "" : S.empty;
      $("an-export").href = `/api/orders.csv?from=${from}&to=${to}`;
      history.replaceState(null, "", `?from=${from}&to=${to}` + (new URLSearchParams(location.search).has("lang")
        ? `&lang=${encodeURIComponent(cfg.lang)}` : ""));
    } catch (err) {
      $("an-status").textContent = fmt(S.failed, { error: err.message });
    }
  }

  const query = new URLSearchParams(location.search);
  $("an-to").value = query.get("to") || cfg.today;
  $("an-from").value = query.get("from") || daysBefore($("an-to").value, 29);
  for (const n of [7, 30, 90, 365]) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = fmt(S.days, { n });
    b.addEventListener("click", () => {
      $("an-to").value = cfg.today;
      $("an-from").value = daysBefore(cfg.today, n - 1);
      load();
    });
    $("an-presets").append(b);
  }
  $("an-period").addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });
  load();
})();
