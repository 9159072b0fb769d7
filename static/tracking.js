// livemap customer tracking page: follows /ws/track/{id} and keeps the map, ETA and timeline current.
// No framework, no build step: the page embeds its config (strings, stages, first snapshot) as JSON.
(function () {
  "use strict";
  const cfg = JSON.parse(document.getElementById("lm-config").textContent);
  const S = cfg.strings;
  const map = window[cfg.map];
  const $ = (id) => document.getElementById(id);
  const fmt = (text, vars) => text.replace(/\{(\w+)\}/g, (_, k) => (k in vars ? vars[k] : ""));
  const clock = new Intl.DateTimeFormat(cfg.lang, { timeZone: cfg.timezone, hour: "2-digit", minute: "2-digit" });
  const stamp = new Intl.DateTimeFormat(cfg.lang, {
    timeZone: cfg.timezone, weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit",
  });
  const DELIVERED = new Set(cfg.delivered); // delivered, the store's stages after it, completed
  const ENDED = new Set(["cancelled", "returned"]);
  const STALE_MS = 60000;

  let order = cfg.snapshot.order;
  let eta = cfg.snapshot.eta;
  let driver = cfg.snapshot.driver;
  let offset = cfg.snapshot.offset;
  let marker = null;
  let notice = null;
  let fitted = false;
  // Where the order's return stands; with "pickup" and a live order a driver is on the way to collect it.
  let currentReturn = cfg.returns.current;
  const collecting = () => order.live && Boolean(currentReturn) && currentReturn.status === "pickup";
  // The driver is shown on the way to the customer: a delivery's leg, or a return's pickup leg.
  const following = () => order.live && (!DELIVERED.has(order.stage) || collecting());

  // --- map ----------------------------------------------------------------------------------------
  function driverIcon(stale) {
    return L.divIcon({ className: "lm-driver" + (stale ? " lm-stale" : ""), iconSize: [22, 22], iconAnchor: [11, 11] });
  }

  // Glide from the marker's position to the new fix over ~1 s instead of jumping.
  function glide(to) {
    const from = marker.getLatLng();
    const start = performance.now();
    const step = (now) => {
      const k = Math.min((now - start) / 900, 1);
      marker.setLatLng([from.lat + (to[0] - from.lat) * k, from.lng + (to[1] - from.lng) * k]);
      if (k < 1) requestAnimationFrame(step);
    };
    requestAnimationFrame(step);
  }

  function showDriver() {
    const visible = driver && following();
    if (!visible) {
      if (marker) { marker.remove(); marker = null; }
      return;
    }
    const stale = Date.now() - driver.ts > STALE_MS;
    if (!marker) {
      marker = L.marker([driver.lat, driver.lon], { icon: driverIcon(stale), title: S.driver, keyboard: false }).addTo(map);
    } else {
      glide([driver.lat, driver.lon]);
      marker.setIcon(driverIcon(stale));
    }
    const dest = order.destination;
    if (!fitted && dest) {
      // Once, so the customer can pan and zoom freely afterwards: both driver and door in view.
      map.fitBounds(L.latLngBounds([[driver.lat, driver.lon], [dest.lat, dest.lon]]).pad(0.25));
      fitted = true;
    }
  }

  // --- text ---------------------------------------------------------------------------------------
  function ago(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    return s < 90 ? fmt(S.seconds, { n: s }) : fmt(S.minutes, { n: Math.round(s / 60) });
  }

  function renderEta() {
    let text;
    if (collecting()) {
      const left = eta ? Math.round((eta.eta_at - Date.now()) / 1000) : null;
      text = left === null ? S.pickup_on_way : left < 60 ? S.eta_now : fmt(S.pickup_eta, { n: Math.round(left / 60) });
    } else if (DELIVERED.has(order.stage)) {
      const done = order.history.filter((h) => h.stage === "delivered").pop() || order.history[order.history.length - 1];
      text = fmt(S.delivered_at, { time: clock.format(new Date(done.at)) });
    } else if (eta && order.live) {
      const left = Math.round((eta.eta_at - Date.now()) / 1000);
      text = left < 60 ? S.eta_now : fmt(S.eta_minutes, { n: Math.round(left / 60) });
    } else {
      text = order.live ? S.on_its_way : label(order.stage);
    }
    $("lm-eta").textContent = text;
    const seen = $("lm-seen");
    const stale = driver && following() && Date.now() - driver.ts > STALE_MS;
    seen.hidden = !stale;
    if (stale) seen.textContent = fmt(S.last_seen, { ago: ago(Date.now() - driver.ts) });
    const n = $("lm-notice");
    n.hidden = !notice;
    if (notice) n.textContent = notice;
  }

  function label(stage) {
    const found = cfg.pipeline.find((p) => p.id === stage);
    return found ? found.label : stage;
  }

  function renderTimeline() {
    const reached = new Map(order.history.map((h) => [h.stage, h.at]));
    const list = $("lm-timeline");
    list.replaceChildren();
    const shown = cfg.pipeline.filter((p) => reached.has(p.id) || !["failed_attempt", "cancelled", "returned"].includes(p.id));
    for (const p of shown) {
      const li = document.createElement("li");
      const at = reached.get(p.id);
      li.className = at ? (p.id === order.stage ? "lm-current" : "lm-done") : "lm-todo";
      if (p.id === order.stage) li.setAttribute("aria-current", "step");
      const name = document.createElement("span");
      name.textContent = p.label;
      li.append(name);
      if (at) {
        const time = document.createElement("time");
        time.dateTime = new Date(at).toISOString();
        time.textContent = stamp.format(new Date(at));
        li.append(time);
      }
      list.append(li);
    }
  }

  function renderDetails() {
    const rows = [
      [S.tracking_number, order.tracking_number],
      [S.carrier, order.carrier],
      [S.promised, order.promised_by ? stamp.format(new Date(order.promised_by)) : null],
      [S.address, order.address],
    ];
    const dl = $("lm-details");
    dl.replaceChildren();
    for (const [k, v] of rows) {
      if (!v) continue;
      const dt = document.createElement("dt");
      dt.textContent = k;
      const dd = document.createElement("dd");
      dd.textContent = v;
      dl.append(dt, dd);
    }
  }

  // --- after delivery: rating and returns; before it: updates by email / SMS -----------------------
  let rerating = false; // the customer asked to change a rating already given

  async function post(what, body) {
    const r = await fetch(`/api/track/${cfg.tracking_id}/${what}?t=${encodeURIComponent(cfg.token)}`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body), cache: "no-store",
    });
    if (!r.ok) throw new Error(`${what}: HTTP ${r.status}`);
    return r.json();
  }

  function lightStars(n) {
    for (const input of document.querySelectorAll(".lm-stars input")) {
      input.nextElementSibling.classList.toggle("lm-lit", Number(input.value) <= n);
    }
  }

  // Proof of delivery: asked for once the order is delivered (404 when the driver left none).
  let proofAsked = false;

  async function loadProof() {
    if (proofAsked) return;
    proofAsked = true;
    const q = `?t=${encodeURIComponent(cfg.token)}`;
    try {
      const r = await fetch(`/api/track/${cfg.tracking_id}/proof${q}`, { cache: "no-store" });
      if (!r.ok) return;
      const proof = await r.json();
      const who = $("lm-proof-recipient");
      who.hidden = !proof.recipient;
      if (proof.recipient) who.textContent = fmt(S.proof_recipient, { name: proof.recipient });
      const img = $("lm-proof-photo");
      img.hidden = !proof.photo;
      if (proof.photo) img.src = `/api/track/${cfg.tracking_id}/proof/photo${q}&at=${proof.at}`;
      $("lm-proof").hidden = !(proof.recipient || proof.photo);
    } catch {
      proofAsked = false; // offline: ask again with the next render
    }
  }

  function renderAfter() {
    const done = DELIVERED.has(order.stage);
    if (done) loadProof();
    $("lm-feedback").hidden = !done;
    if ($("lm-return")) $("lm-return").hidden = !done;
    if ($("lm-returns")) renderReturn(done);
    if ($("lm-updates")) $("lm-updates").hidden = done || ENDED.has(order.stage);
    const rated = Boolean(order.feedback) && !rerating;
    $("lm-rate").hidden = rated;
    $("lm-rated").hidden = !rated;
    if (rated) $("lm-thanks").textContent = fmt(S.thanks, { n: order.feedback.rating });
  }

  // Built-in returns: the form within the store's window after delivery; then where the return stands.
  const day = new Intl.DateTimeFormat(cfg.lang, { timeZone: cfg.timezone, day: "numeric", month: "long" });

  function renderReturn(done) {
    const open = done && cfg.returns.closes_at && Date.now() < cfg.returns.closes_at;
    $("lm-returns").hidden = !(currentReturn || open);
    $("lm-return-form").hidden = Boolean(currentReturn) || !open;
    $("lm-return-is").hidden = !currentReturn;
    $("lm-returns-h").textContent = currentReturn ? S.return_title : S.start_return;
    if (currentReturn) {
      $("lm-return-is").textContent = fmt(S.return_is, { status: S["ret_" + currentReturn.status] || currentReturn.status });
    } else if (open) {
      $("lm-return-until").textContent = fmt(S.return_until, { date: day.format(new Date(cfg.returns.closes_at)) });
    }
  }

  // A form that posts to the server: its button off while it goes, its error line shown if it fails.
  function onSubmit(formId, failedId, send) {
    $(formId).addEventListener("submit", async (ev) => {
      ev.preventDefault(); // the browser has checked the required fields
      const button = ev.currentTarget.querySelector("button");
      $(failedId).hidden = true;
      button.disabled = true;
      try {
        await send(new FormData(ev.currentTarget));
      } catch {
        $(failedId).hidden = false;
      } finally {
        button.disabled = false;
      }
    });
  }

  if ($("lm-return-form")) {
    onSubmit("lm-return-form", "lm-return-failed", async (data) => {
      currentReturn = await post("return", { reason: data.get("reason"), note: data.get("note") || null });
      renderAfter();
      const file = data.get("photo");
      if (file && file.size) $("lm-return-photo-failed").hidden = await sendPhoto(file);
    });
  }

  // The return's photo goes after the return itself (a failed photo must not lose the return): true when it went.
  async function sendPhoto(file) {
    try {
      const photo = await window.livemapPhoto.shrink(file);
      const r = await fetch(`/api/track/${cfg.tracking_id}/return/photo?t=${encodeURIComponent(cfg.token)}`, {
        method: "PUT", headers: { "Content-Type": photo.type }, body: photo, cache: "no-store",
      });
      return r.ok;
    } catch {
      return false;
    }
  }

  // The boxes show what the server holds: on load, with each new snapshot, after each save (or failed save).
  function fillUpdates() {
    for (const box of document.querySelectorAll("#lm-updates input")) box.checked = order.subscriptions[box.name];
  }

  onSubmit("lm-rate", "lm-rate-failed", async (data) => { // a star is required: the browser checked it
    order.feedback = await post("feedback", { rating: Number(data.get("rating")), comment: data.get("comment") || null });
    rerating = false;
    renderAfter();
    $("lm-rerate").focus(); // the submit button just disappeared: keep focus (and the reader) in place
  });

  $("lm-rerate").addEventListener("click", () => {
    rerating = true;
    const star = document.getElementById(`lm-star-${order.feedback.rating}`);
    star.checked = true;
    lightStars(order.feedback.rating);
    $("lm-comment").value = order.feedback.comment || "";
    renderAfter();
    star.focus();
  });

  document.querySelector(".lm-stars").addEventListener("change", (ev) => lightStars(Number(ev.target.value)));

  if ($("lm-updates")) {
    $("lm-updates").addEventListener("change", async (ev) => {
      const box = ev.target;
      const status = $("lm-updates-status");
      status.textContent = "";
      try {
        order.subscriptions = await post("subscriptions", { [box.name]: box.checked });
        status.textContent = S.saved;
      } catch {
        status.textContent = S.failed;
      }
      fillUpdates(); // what the server holds, also when saving failed
    });
  }

  function render() {
    showDriver();
    renderEta();
    renderTimeline();
    renderDetails();
    renderAfter();
  }

  function setConnection(state) {
    const el = $("lm-conn");
    el.dataset.state = state;
    el.textContent = { live: S.live, connecting: S.connecting, reconnecting: S.reconnecting, polling: S.polling }[state];
  }

  // --- events -------------------------------------------------------------------------------------
  // The route: drawn by folium with the page; a road route from the router (a new one after the
  // driver left it) replaces it live.
  let routeLine = cfg.route_layer ? window[cfg.route_layer] : null;
  function drawRoute(points) {
    if (!points || points.length < 2) return;
    if (routeLine) routeLine.setLatLngs(points);
    else routeLine = L.polyline(points, { color: cfg.route_color, weight: 5, opacity: 0.7 }).addTo(map);
  }

  function applySnapshot(s) {
    order = s.order;
    drawRoute(order.route);
    eta = s.eta;
    driver = s.driver;
    offset = s.offset;
    if (s.order.return_status) currentReturn = { ...currentReturn, status: s.order.return_status };
    render();
    fillUpdates();
  }

  function applyEvent(e) {
    if (e.offset) offset = e.offset;
    switch (e.type) {
      case "location":
        driver = { lat: e.lat, lon: e.lon, speed: e.speed, heading: e.heading, accuracy: e.accuracy, ts: e.ts };
        if (e.eta_at != null) eta = { eta_s: e.eta_s, eta_at: e.eta_at, remaining_m: e.remaining_m };
        break;
      case "eta":
        eta = { eta_at: e.eta_at, remaining_m: e.remaining_m };
        break;
      case "stage":
        order.history = order.history.concat([{ stage: e.stage, at: e.at, note: e.note }]);
        order.stage = e.stage;
        order.live = e.live;
        notice = null;
        break;
      case "assigned":
        order.live = e.live;
        break;
      case "return": // a step of the return; with "pickup" the collecting driver's leg goes live
        currentReturn = { ...currentReturn, status: e.status };
        order.live = e.live;
        if (e.live) { // the delivery's route and ETA led from the store: the pickup's come with the driver's fixes
          eta = null;
          fitted = false;
          if (routeLine) { routeLine.remove(); routeLine = null; }
        }
        break;
      case "arriving":
        notice = S.arriving;
        break;
      case "delayed":
        notice = e.resolved ? null : S.delayed;
        break;
      case "off_route":
        notice = e.resolved ? null : S.off_route;
        break;
      case "route":
        order.route = e.points;
        drawRoute(e.points);
        if (e.reason === "off_route") notice = null; // the new route starts where the driver is
        break;
      default:
        break; // stale / offline / arrived: the marker and "last seen" follow from the fix times
    }
    render();
  }

  // --- connection: websocket with `since` replay (static/reconnect.js); polling when websockets are blocked
  let pollTimer = null;

  const socket = window.livemapSocket.reconnecting({
    url: () => {
      const proto = location.protocol === "https:" ? "wss:" : "ws:";
      return `${proto}//${location.host}/ws/track/${cfg.tracking_id}?t=${encodeURIComponent(cfg.token)}` +
        (offset ? `&since=${offset}` : "");
    },
    onConnecting: (failures) => setConnection(failures ? "reconnecting" : "connecting"),
    onOpen: () => { stopPolling(); setConnection("live"); },
    onMessage: (msg) => {
      const data = JSON.parse(msg.data);
      if (data.type === "snapshot") applySnapshot(data); else applyEvent(data);
    },
    onRetry: (failures) => { if (failures >= 3) startPolling(); },
  });

  function startPolling() {
    if (pollTimer) return;
    setConnection("polling");
    const poll = async () => {
      try {
        const r = await fetch(`/api/track/${cfg.tracking_id}?t=${encodeURIComponent(cfg.token)}`, { cache: "no-store" });
        if (r.ok) applySnapshot(await r.json());
      } catch {
        /* offline: try again next round */
      }
    };
    poll();
    pollTimer = setInterval(poll, 15000);
  }

  function stopPolling() {
    if (pollTimer) { clearInterval(pollTimer); pollTimer = null; }
  }

  // --- views: the page counts itself, no cookie ---------------------------------------------------
  // A view is one stretch of the page on screen: sent when it leaves the screen (another tab, the
  // phone locked, the page closed), with its seconds and whether this is a phone-sized device.
  const PHONE = window.matchMedia("(max-width: 767px)").matches || /Mobi|Android/i.test(navigator.userAgent);
  let shownAt = document.visibilityState === "visible" ? performance.now() : null;

  function viewEnded() {
    if (shownAt === null || cfg.preview) return;
    const seconds = Math.min(86400, (performance.now() - shownAt) / 1000);
    shownAt = null;
    fetch(`/api/track/${cfg.tracking_id}/views?t=${encodeURIComponent(cfg.token)}`, {
      method: "POST", headers: { "Content-Type": "application/json" }, keepalive: true,
      body: JSON.stringify({ seconds: Math.round(seconds * 10) / 10, device: PHONE ? "phone" : "desktop" }),
    }).catch(() => { /* a lost view is only a count */ });
  }

  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") viewEnded();
    else if (shownAt === null) shownAt = performance.now();
  });
  window.addEventListener("pagehide", viewEnded);

  render();
  fillUpdates();
  setInterval(renderEta, 5000); // countdown and "last seen" age move on between events
  // The settings page's preview of this page: a sample order, nothing to follow.
  if (cfg.preview) setConnection("live");
  else socket.start();
})();
