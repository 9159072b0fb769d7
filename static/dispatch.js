// livemap dispatcher dashboard: follows /ws/dispatch and keeps the map, the delivery list and the
// driver panel current; acts through the store's REST API with the session's CSRF token.
// No framework, no build step: the page embeds its config (stages, drivers, thresholds, its words) as JSON.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const cfg = JSON.parse($("dp-config").textContent);
  const S = cfg.strings; // en, es or pt-BR, as the server chose (static/office.js fills their {n} fields)
  const { fill } = window.livemapOffice;
  const map = window[cfg.map];
  const LABEL = new Map(cfg.stages.map((s) => [s.id, s.label]));
  const FINAL = new Set(cfg.final); // the order leaves the dashboard
  const DONE = new Set([...cfg.delivered, ...cfg.final]); // nothing left to deliver
  // Nothing left to do: delivered or final, and no driver on the way to collect a return.
  const done = (o) => DONE.has(o.stage) && !o.return_leg;
  const AT_RISK_MS = 5 * 60 * 1000; // an ETA this close to the promised time is at risk
  const MAX_ROWS = 300; // rows drawn per table: enough to scan, cheap to redraw every second
  const RANK = { idle: 0, ontime: 1, risk: 2, stale: 3, late: 4 };
  // The store's clock in the page's language; 24-hour in every language, as dispatchers compare times at a glance.
  const clock = new Intl.DateTimeFormat(cfg.lang, { timeZone: cfg.timezone, hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  const km = new Intl.NumberFormat(cfg.lang, { minimumFractionDigits: 1, maximumFractionDigits: 1 });
  const percent = new Intl.NumberFormat(cfg.lang, { style: "percent", maximumFractionDigits: 0 });

  const orders = new Map(); // order id -> order as in the snapshot, kept current by events
  const drivers = new Map(); // driver id -> {driver_id, name, lat, lon, ts, battery, stops, stale, offline}
  const byTracking = new Map(); // tracking id -> order id (events name both; some only the tracking id)
  const selected = new Set();
  let sortKey = "state";
  let sortDir = -1;
  let focused = null; // the order in the detail card
  let detailFor = null; // what the card's selects were built for (rebuilt only when it changes)
  let areaMode = false; // the socket sends only the map's area (many drivers)
  let fitted = false;

  map.getContainer().setAttribute("aria-label", S.map);

  // --- small helpers -------------------------------------------------------------------------------
  const esc = (s) => String(s == null ? "" : s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  const label = (stage) => LABEL.get(stage) || stage;
  const driverName = (id) => (drivers.get(id) && drivers.get(id).name) || cfg.drivers[id] || id;

  function ago(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 90) return fill(S.unit_s, { n: s });
    if (s < 90 * 60) return fill(S.unit_min, { n: Math.round(s / 60) });
    return fill(S.unit_h, { n: Math.round(s / 3600) });
  }

  const battery = (d) => (d.battery == null ? "—" : percent.format(Math.round(d.battery) / 100));

  function initials(name) {
    const parts = name.trim().split(/\s+/).filter(Boolean);
    return (parts.length > 1 ? parts[0][0] + parts[parts.length - 1][0] : name.slice(0, 2)).toUpperCase();
  }

  // --- state: who is late, who went silent -----------------------------------------------------------
  // "unknown": named by an order in the map's area, itself outside it (only the area is sent).
  function driverStatus(d, now) {
    if (d.ts == null) return d.offline ? "offline" : "unknown";
    if (d.offline || now - d.ts > cfg.online_window_ms) return "offline";
    if (d.stale || now - d.ts > cfg.stale_after_ms) return "stale";
    return "online";
  }

  const silent = (status) => status === "stale" || status === "offline";

  // A broken promise shows whatever else is true; a silent driver's ETA is not worth showing as on time.
  function orderState(o, now) {
    if (done(o)) return "idle";
    const promised = o.return_leg ? null : o.promised_by; // the delivery's promise is not the pickup's
    if (promised != null && (now > promised || (o.eta_at != null && o.eta_at > promised + cfg.delay_grace_ms))) return "late";
    const d = o.live && o.driver_id ? drivers.get(o.driver_id) : null;
    if (d && silent(driverStatus(d, now))) return "stale";
    if (promised == null) return "ontime";
    return (o.eta_at != null ? o.eta_at : now) > promised - AT_RISK_MS ? "risk" : "ontime";
  }

  function stopsOf(d) {
    return d.stops.map((id) => orders.get(id)).filter((o) => o && !done(o));
  }

  function driverState(d, now) {
    if (silent(driverStatus(d, now))) return "stale";
    let worst = "idle";
    for (const o of stopsOf(d)) {
      const s = orderState(o, now);
      if (RANK[s] > RANK[worst]) worst = s;
    }
    return worst;
  }

  // --- map ------------------------------------------------------------------------------------------
  function clusterIcon(kind) {
    return (cluster) => {
      let worst = "idle";
      for (const m of cluster.getAllChildMarkers()) if (RANK[m.options.state] > RANK[worst]) worst = m.options.state;
      const n = cluster.getChildCount();
      return L.divIcon({ html: `<span>${n}</span>`, className: `dp-cluster dp-cluster-${kind} dp-s-${worst}`, iconSize: [38, 38] });
    };
  }
  const clusterOptions = { maxClusterRadius: 48, disableClusteringAtZoom: 16, showCoverageOnHover: false, chunkedLoading: true };
  const destLayer = L.markerClusterGroup({ ...clusterOptions, iconCreateFunction: clusterIcon("dest") }).addTo(map);
  const driverLayer = L.markerClusterGroup({ ...clusterOptions, iconCreateFunction: clusterIcon("drv") }).addTo(map);
  const moved = new Set(); // driver markers to move on the next frame (a cluster group re-files moved markers)
  let moveFrame = 0;

  function driverIcon(d, state) {
    const html = `<span data-driver="${esc(d.driver_id)}">${esc(initials(d.name || d.driver_id))}</span>`;
    return L.divIcon({ html, className: `dp-drv dp-s-${state}`, iconSize: [28, 28], iconAnchor: [14, 14] });
  }

  function destIcon(o, state) {
    const html = `<span data-order="${esc(o.order_id)}"></span>`;
    return L.divIcon({ html, className: `dp-dest dp-s-${state}`, iconSize: [14, 14], iconAnchor: [7, 7] });
  }

  function showDriver(d, now) {
    if (d.lat == null) return;
    const state = driverState(d, now);
    if (!d.marker) {
      d.marker = L.marker([d.lat, d.lon], { icon: driverIcon(d, state), state, keyboard: false, title: d.name });
      d.marker.on("click", () => focusDriver(d.driver_id));
      driverLayer.addLayer(d.marker);
      return;
    }
    if (d.marker.options.state !== state) {
      d.marker.options.state = state;
      d.marker.setIcon(driverIcon(d, state));
      driverLayer.refreshClusters(d.marker);
    }
  }

  function moveDriver(d) {
    if (!d.marker) return;
    moved.add(d);
    if (!moveFrame) moveFrame = requestAnimationFrame(applyMoves);
  }

  function applyMoves() {
    moveFrame = 0;
    const batch = [...moved].filter((d) => d.marker);
    moved.clear();
    const markers = batch.map((d) => d.marker);
    driverLayer.removeLayers(markers);
    for (const d of batch) d.marker.setLatLng([d.lat, d.lon]);
    driverLayer.addLayers(markers);
  }

  function showDest(o, now) {
    const dest = o.destination;
    const state = orderState(o, now);
    if (!dest || done(o)) {
      if (o.marker) { destLayer.removeLayer(o.marker); o.marker = null; }
      return;
    }
    if (!o.marker) {
      o.marker = L.marker([dest.lat, dest.lon], { icon: destIcon(o, state), state, keyboard: false, title: fill(S.order, { id: o.order_id }) });
      o.marker.on("click", () => focusOrder(o.order_id));
      destLayer.addLayer(o.marker);
    } else if (o.marker.options.state !== state) {
      o.marker.options.state = state;
      o.marker.setIcon(destIcon(o, state));
      destLayer.refreshClusters(o.marker);
    }
  }

  function dropMarkers() {
    driverLayer.clearLayers();
    destLayer.clearLayers();
    for (const d of drivers.values()) d.marker = null;
    for (const o of orders.values()) o.marker = null;
  }

  function fitOnce() {
    if (fitted) return;
    const points = [];
    for (const d of drivers.values()) if (d.lat != null) points.push([d.lat, d.lon]);
    for (const o of orders.values()) if (o.destination) points.push([o.destination.lat, o.destination.lon]);
    if (!points.length) return;
    fitted = true;
    map.fitBounds(L.latLngBounds(points).pad(0.1), { maxZoom: 15 });
  }

  // --- the model: snapshot and events ------------------------------------------------------------
  function addOrder(o) {
    const old = orders.get(o.order_id);
    if (old && old.marker) destLayer.removeLayer(old.marker);
    o.marker = null;
    orders.set(o.order_id, o);
    byTracking.set(o.tracking_id, o.order_id);
    if (o.driver_id) knownDriver(o.driver_id, o.order_id);
  }

  // A driver named by an order but absent from the snapshot: offline (or outside the map's area).
  function knownDriver(id, orderId) {
    let d = drivers.get(id);
    if (!d) {
      d = { driver_id: id, name: cfg.drivers[id] || id, lat: null, lon: null, ts: null, battery: null, stops: [], offline: !areaMode };
      drivers.set(id, d);
    }
    if (orderId && !d.stops.includes(orderId)) d.stops.push(orderId);
    return d;
  }

  function applySnapshot(snap) {
    dropMarkers();
    orders.clear();
    drivers.clear();
    byTracking.clear();
    for (const d of snap.drivers) drivers.set(d.driver_id, { ...d, offline: false, marker: null });
    for (const o of snap.orders) addOrder(o);
    fitOnce();
    if (!areaMode && snap.drivers.length > cfg.viewport_drivers) {
      areaMode = true; // from now on the socket sends the map's area only (answered with a new snapshot)
      sendViewport();
    } else if (areaMode && fresh) {
      sendViewport(); // reconnected: the server starts from the whole store again
    }
    fresh = false;
    $("dp-area-note").hidden = !areaMode;
    const now = Date.now();
    for (const d of drivers.values()) showDriver(d, now);
    for (const o of orders.values()) showDest(o, now);
    changed(true);
  }

  function onLocation(m) {
    let d = drivers.get(m.driver_id);
    if (!d) {
      d = knownDriver(m.driver_id);
    } else if (d.ts != null && m.ts <= d.ts) {
      return; // older than what a snapshot already showed
    }
    const first = d.lat == null;
    Object.assign(d, { lat: m.lat, lon: m.lon, ts: m.ts, battery: m.battery, stale: false, offline: false });
    if (first || !d.marker) showDriver(d, Date.now());
    else moveDriver(d);
    changed(false);
  }

  function onStage(m) {
    let o = orders.get(m.order_id);
    if (!o) {
      if (m.driver_id && !done(m) && !areaMode) fetchOrder(m.order_id); // newly assigned (or collecting a return)
      return;
    }
    if (o.driver_id !== (m.driver_id || null)) moveStop(o, m.driver_id);
    Object.assign(o, { stage: m.stage, live: m.live, driver_id: m.driver_id || null, return_leg: Boolean(m.return_leg) });
    if (!active(o)) forget(o);
    changed(true);
  }

  function moveStop(o, to) {
    const from = o.driver_id && drivers.get(o.driver_id);
    if (from) from.stops = from.stops.filter((id) => id !== o.order_id);
    if (to) knownDriver(to, o.order_id);
  }

  // Active (on the dashboard): not final, and a driver assigned (DESIGN.md).
  const active = (o) => (!FINAL.has(o.stage) || o.return_leg) && !!o.driver_id;

  function forget(o) {
    if (o.marker) destLayer.removeLayer(o.marker);
    moveStop(o, null);
    orders.delete(o.order_id);
    selected.delete(o.order_id);
    if (focused === o.order_id) closeDetail();
  }

  function onEta(m) {
    const o = orders.get(m.order_id || byTracking.get(m.tracking_id));
    if (!o) return;
    o.eta_at = m.eta_at;
    if (m.remaining_m != null) o.remaining_m = m.remaining_m;
    changed(true);
  }

  function onQuiet(m, offline) {
    const d = drivers.get(m.driver_id);
    if (!d) return;
    if (offline) d.offline = true;
    else d.stale = true;
    changed(true);
  }

  async function fetchOrder(id) {
    const r = await api("GET", `/api/orders/${encodeURIComponent(id)}`);
    if (!r.ok || orders.has(id)) return;
    const v = r.body;
    addOrder({
      order_id: v.id, tracking_id: v.tracking_id, stage: v.stage, live: v.live, driver_id: v.driver_id,
      customer: v.customer.name, address: v.address, destination: v.destination, promised_by: v.promised_by,
      eta_at: v.eta ? v.eta.eta_at : null, remaining_m: v.eta ? v.eta.remaining_m : null, return_leg: v.return_leg,
    });
    changed(true);
  }

  // --- socket (static/reconnect.js) -------------------------------------------------------------------
  let fresh = false; // a new socket: the server starts from the whole store again

  function setConn(state, text) {
    const el = $("dp-conn");
    el.dataset.state = state;
    el.textContent = text;
  }

  const socket = window.livemapSocket.reconnecting({
    url: () => `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/dispatch`, // the session cookie goes along
    onOpen: () => { fresh = true; setConn("live", S.live); },
    onMessage: (e) => {
      const m = JSON.parse(e.data);
      if (m.type === "snapshot") applySnapshot(m);
      else if (m.type === "location") onLocation(m);
      else if (m.type === "stage") onStage(m);
      else if (m.type === "eta" || m.type === "delayed" || m.type === "arriving") onEta(m);
      else if (m.type === "stale" || m.type === "offline") onQuiet(m, m.type === "offline");
      else if (m.type === "route") onRoute(m);
    },
    onClose: () => setConn("reconnecting", S.reconnecting),
  });

  function sendViewport() {
    if (!areaMode || !socket.isOpen()) return;
    // Padded, so panning a little shows markers that are already there.
    const b = map.getBounds().pad(0.25);
    const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
    const bbox = [clamp(b.getWest(), -180, 180), clamp(b.getSouth(), -90, 90), clamp(b.getEast(), -180, 180), clamp(b.getNorth(), -90, 90)];
    socket.send(JSON.stringify({ type: "viewport", bbox }));
  }

  let viewportTimer = 0;
  map.on("moveend", () => {
    clearTimeout(viewportTimer);
    viewportTimer = setTimeout(sendViewport, 300);
  });

  // --- REST: the store's own endpoints, same validation -------------------------------------------------
  async function api(method, path, body) {
    const headers = { "X-CSRF-Token": cfg.csrf };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: "same-origin" })
      .catch(() => null);
    if (!r) return { ok: false, status: 0, offline: true, body: {} }; // never reached the server
    if (r.status === 401) location.reload(); // the session ended: back to the sign-in form
    const data = await r.json().catch(() => ({}));
    return { ok: r.ok, status: r.status, body: data };
  }

  // The server's own message is English: the refusals a dispatcher can act on are said in the page's language.
  function problem(r) {
    if (r.offline) return S.offline;
    const err = (r.body && r.body.error) || {};
    if (err.code === "illegal_transition" && err.current) return fill(S.err_stage, { stage: label(err.current) });
    if (err.code === "illegal_assignment") return S.err_closed;
    if (err.code === "stops_mismatch") return S.err_stops;
    return fill(S.failed, { error: err.message || `HTTP ${r.status}` });
  }

  function applyOrderView(v) {
    const o = orders.get(v.id);
    if (!o) return;
    if (o.driver_id !== v.driver_id) moveStop(o, v.driver_id);
    Object.assign(o, { stage: v.stage, live: v.live, driver_id: v.driver_id, eta_at: v.eta ? v.eta.eta_at : o.eta_at });
    if (!active(o)) forget(o);
    changed(true);
  }

  async function moveStage(ids, stage) {
    const results = await Promise.all(ids.map((id) => api("POST", `/api/orders/${encodeURIComponent(id)}/stage`, { stage })));
    const failed = [];
    results.forEach((r, i) => (r.ok ? applyOrderView(r.body) : failed.push(`${ids[i]}: ${problem(r)}`)));
    return failed;
  }

  // --- the delivery list ---------------------------------------------------------------------------
  const SORTS = {
    state: (o, now) => RANK[orderState(o, now)],
    order_id: (o) => o.order_id,
    customer: (o) => (o.customer || "").toLowerCase(),
    stage: (o) => label(o.stage),
    driver: (o) => (o.driver_id ? driverName(o.driver_id).toLowerCase() : "~"),
    eta: (o) => o.eta_at || o.promised_by || Infinity,
    seen: (o) => { const d = o.driver_id && drivers.get(o.driver_id); return d && d.ts ? -d.ts : Infinity; },
  };

  function shownOrders(now) {
    const q = $("dp-search").value.trim().toLowerCase();
    const stage = $("dp-filter-stage").value;
    const driver = $("dp-filter-driver").value;
    const lateOnly = $("dp-late-only").checked;
    const rows = [];
    for (const o of orders.values()) {
      if (stage && o.stage !== stage) continue;
      if (driver && o.driver_id !== driver) continue;
      if (lateOnly && orderState(o, now) !== "late") continue;
      if (q) {
        const hay = `${o.order_id} ${o.customer || ""} ${o.address || ""} ${o.driver_id ? driverName(o.driver_id) : ""}`.toLowerCase();
        if (!hay.includes(q)) continue;
      }
      rows.push(o);
    }
    const key = SORTS[sortKey];
    rows.sort((a, b) => {
      const x = key(a, now), y = key(b, now);
      const c = x < y ? -1 : x > y ? 1 : 0;
      return c * sortDir || (a.eta_at || Infinity) - (b.eta_at || Infinity) || (a.order_id < b.order_id ? -1 : 1);
    });
    return rows;
  }

  // "14:32 / 14:30 +2 min": the ETA, the promised time, and how far apart (late in red).
  function etaCell(o, state) {
    const eta = o.eta_at != null ? clock.format(new Date(o.eta_at)) : "—";
    if (o.promised_by == null) return esc(eta);
    let badge = "";
    if (o.eta_at != null) {
      const diff = o.eta_at - o.promised_by;
      const min = Math.round(Math.abs(diff) / 60000);
      const text = min === 0 ? (diff > 0 ? `+<${fill(S.unit_min, { n: 1 })}` : S.on_time) : `${diff > 0 ? "+" : "−"}${fill(S.unit_min, { n: min })}`;
      badge = ` <b class="dp-diff${diff > 0 || state === "late" ? " dp-over" : ""}">${esc(text)}</b>`;
    }
    return `${esc(eta)} <span class="dp-by">/ ${esc(clock.format(new Date(o.promised_by)))}</span>${badge}`;
  }

  function seenCell(d, now) {
    if (!d || d.ts == null) return d && d.offline ? S.st_offline : "—";
    return ago(now - d.ts);
  }

  function orderRow(o, now) {
    const state = orderState(o, now);
    o.shownState = state;
    const d = o.driver_id ? drivers.get(o.driver_id) : null;
    return `<tr data-order="${esc(o.order_id)}" class="dp-row dp-s-${state}${focused === o.order_id ? " dp-focused" : ""}">
      <td><input type="checkbox" class="dp-pick" aria-label="${esc(fill(S.select, { id: o.order_id }))}"${selected.has(o.order_id) ? " checked" : ""}></td>
      <td class="dp-id"><i class="dp-dot dp-s-${state}"></i>${esc(o.order_id)}</td><td>${esc(o.customer)}</td>
      <td>${esc(label(o.stage))}</td><td>${o.driver_id ? esc(driverName(o.driver_id)) : "—"}</td>
      <td class="dp-eta">${etaCell(o, state)}</td><td class="dp-seen">${seenCell(d, now)}</td></tr>`;
  }

  function renderOrders(now) {
    const rows = shownOrders(now);
    const tbody = $("dp-orders").tBodies[0];
    tbody.innerHTML = rows.slice(0, MAX_ROWS).map((o) => orderRow(o, now)).join("");
    if (rows.length > MAX_ROWS) {
      tbody.insertAdjacentHTML("beforeend", `<tr><td colspan="7" class="dp-more">${esc(fill(S.more, { n: rows.length - MAX_ROWS }))}</td></tr>`);
    }
    $("dp-orders-empty").hidden = rows.length > 0;
    $("dp-select-all").checked = rows.length > 0 && rows.every((o) => selected.has(o.order_id));
    renderBulk();
  }

  // Between redraws only the ages change in place (a redraw under the pointer could swallow a click);
  // a changed state means a redraw, since the list is sorted by it.
  function refreshOrders(now) {
    for (const row of $("dp-orders").tBodies[0].rows) {
      const o = orders.get(row.dataset.order);
      if (!o) continue;
      if (orderState(o, now) !== o.shownState) return false;
      row.cells[6].textContent = seenCell(o.driver_id ? drivers.get(o.driver_id) : null, now);
    }
    return true;
  }

  function driverRow(d, now) {
    const status = driverStatus(d, now);
    d.shownStatus = status;
    const stops = stopsOf(d);
    const current = stops.find((o) => o.live) || stops[0];
    return `<tr data-driver="${esc(d.driver_id)}" class="dp-row">
      <td>${esc(d.name || d.driver_id)}</td><td><span class="dp-status dp-st-${status}">${esc(S[`st_${status}`])}</span></td>
      <td class="${d.battery != null && d.battery < 20 ? "dp-low" : ""}">${battery(d)}</td>
      <td>${current ? esc(current.order_id) : "—"}</td><td>${stops.length}</td><td class="dp-seen">${seenCell(d, now)}</td></tr>`;
  }

  function renderDrivers(now) {
    const rank = { stale: 0, offline: 1, unknown: 2, online: 3 };
    const list = [...drivers.values()].sort(
      (a, b) => rank[driverStatus(a, now)] - rank[driverStatus(b, now)] || (a.name || "").localeCompare(b.name || ""),
    );
    $("dp-drivers").tBodies[0].innerHTML = list.slice(0, MAX_ROWS).map((d) => driverRow(d, now)).join("");
  }

  function refreshDrivers(now) {
    for (const row of $("dp-drivers").tBodies[0].rows) {
      const d = drivers.get(row.dataset.driver);
      if (!d) continue;
      if (driverStatus(d, now) !== d.shownStatus) return false;
      row.cells[2].textContent = battery(d);
      row.cells[5].textContent = seenCell(d, now);
    }
    return true;
  }

  function renderCounts(now) {
    let late = 0, risk = 0, online = 0, stale = 0;
    for (const o of orders.values()) {
      const s = orderState(o, now);
      if (s === "late") late++;
      else if (s === "risk") risk++;
    }
    for (const d of drivers.values()) {
      const s = driverStatus(d, now);
      if (s === "online") online++;
      else if (s === "stale") stale++;
    }
    // Each count in bold (coloured by its state) inside its words, wherever the language puts the number.
    const count = (text, n, cls) => fill(esc(text), { n: `<b${cls ? ` class="dp-t-${cls}"` : ""}>${n}</b>` });
    $("dp-counts").innerHTML = [count(S.n_active, orders.size), count(S.n_late, late, "late"), count(S.n_risk, risk, "risk"),
      count(S.n_online, online), count(S.n_stale, stale, "stale")].join(" · ");
  }

  // The filters offer the stages and drivers the deliveries have; rebuilt only when those change
  // (rebuilding a select closes it under the pointer).
  let filtersFor = "";
  function renderFilters() {
    const stage = $("dp-filter-stage"), driver = $("dp-filter-driver");
    const keep = [stage.value, driver.value];
    const stages = cfg.stages.map((s) => s.id).filter((id) => [...orders.values()].some((o) => o.stage === id));
    const ids = [...new Set([...orders.values()].map((o) => o.driver_id).filter(Boolean))].sort((a, b) => driverName(a).localeCompare(driverName(b)));
    const key = `${stages.join()}|${ids.join()}`;
    if (key === filtersFor) return;
    filtersFor = key;
    stage.innerHTML = `<option value="">${esc(S.all_stages)}</option>` + stages.map((s) => `<option value="${esc(s)}">${esc(label(s))}</option>`).join("");
    driver.innerHTML = `<option value="">${esc(S.all_drivers)}</option>` + ids.map((id) => `<option value="${esc(id)}">${esc(driverName(id))}</option>`).join("");
    stage.value = stages.includes(keep[0]) ? keep[0] : "";
    driver.value = ids.includes(keep[1]) ? keep[1] : "";
  }

  function renderBulk() {
    for (const id of [...selected]) if (!orders.has(id)) selected.delete(id);
    $("dp-bulk").hidden = selected.size === 0;
    $("dp-bulk-count").textContent = fill(S.n_selected, { n: selected.size });
  }

  // Draw at most once per frame; `structural` when the lists themselves changed, not only ages.
  let dirty = false;
  let drawFrame = 0;
  function changed(structural) {
    dirty = dirty || structural;
    if (!drawFrame) drawFrame = requestAnimationFrame(draw);
  }

  function draw() {
    drawFrame = 0;
    const now = Date.now();
    for (const d of drivers.values()) showDriver(d, now);
    for (const o of orders.values()) showDest(o, now);
    if (dirty || !refreshOrders(now)) {
      renderFilters();
      renderOrders(now);
    }
    if (dirty || !refreshDrivers(now)) renderDrivers(now);
    dirty = false;
    renderCounts(now);
    if (focused) renderDetail();
    placeRing();
  }

  // Time passes: ages grow, promises expire, drivers go quiet.
  setInterval(() => changed(false), 1000);

  // --- focusing and the detail card -----------------------------------------------------------------
  const ring = L.circleMarker([0, 0], { radius: 22, color: "#1a1a1a", weight: 3, fill: false, dashArray: "4 4", interactive: false });

  // The ring follows the focused order's driver while it is live, else marks the door.
  function focusPoint() {
    const o = focused && orders.get(focused);
    if (!o) return null;
    const d = o.live && o.driver_id ? drivers.get(o.driver_id) : null;
    if (d && d.lat != null) return [d.lat, d.lon];
    return o.destination ? [o.destination.lat, o.destination.lon] : null;
  }

  function placeRing() {
    const at = focusPoint();
    if (!at) { ring.remove(); return; }
    ring.setLatLng(at);
    if (!map.hasLayer(ring)) ring.addTo(map);
  }

  // The focused order's route: the store's or the router's, redrawn when a new one arrives.
  let routeLine = null;
  function drawRoute(points) {
    if (!points || points.length < 2) {
      if (routeLine) routeLine.remove();
      routeLine = null;
    } else if (routeLine) routeLine.setLatLngs(points);
    else routeLine = L.polyline(points, { color: "#1f6feb", weight: 4, opacity: 0.8 }).addTo(map);
  }

  async function loadRoute(id) {
    const r = await api("GET", `/api/orders/${encodeURIComponent(id)}`);
    if (r.ok && focused === id) drawRoute(r.body.route);
  }

  function onRoute(m) {
    if (m.order_id === focused) drawRoute(m.points);
  }

  function focusOrder(id) {
    const o = orders.get(id);
    if (!o) return;
    focused = id;
    const at = focusPoint();
    if (at) map.setView(at, Math.max(map.getZoom(), 16)); // past the clustering zoom: the marker itself shows
    $("dp-detail").hidden = false;
    $("dp-detail-result").textContent = "";
    detailFor = null;
    loadStops(o.driver_id);
    drawRoute(null);
    loadRoute(id);
    changed(true);
  }

  function focusDriver(id) {
    const d = drivers.get(id);
    if (!d) return;
    const next = stopsOf(d).find((o) => o.live) || stopsOf(d)[0];
    if (next) focusOrder(next.order_id);
    else if (d.lat != null) map.setView([d.lat, d.lon], Math.max(map.getZoom(), 16));
  }

  function closeDetail() {
    focused = null;
    drawRoute(null);
    $("dp-detail").hidden = true;
    changed(true);
  }

  function renderDetail() {
    const o = orders.get(focused);
    if (!o) return closeDetail();
    $("dp-detail-h").textContent = `${fill(S.order, { id: o.order_id })} · ${label(o.stage)}`;
    const left = o.live && o.remaining_m != null ? fill(S.km_left, { km: km.format(o.remaining_m / 1000) }) : null;
    const who = o.driver_id ? fill(S.driver_is, { name: driverName(o.driver_id) }) : S.no_driver;
    $("dp-detail-sub").textContent = [o.customer, o.address, who, left].filter(Boolean).join(" · ");
    const key = `${o.order_id}|${o.stage}|${o.driver_id}`;
    if (detailFor === key) return;
    detailFor = key;
    const allowed = cfg.allowed[o.stage] || [];
    $("dp-stage-to").innerHTML = allowed.map((s) => `<option value="${esc(s)}">${esc(label(s))}</option>`).join("");
    $("dp-stage-form").querySelector("button").disabled = allowed.length === 0;
    const ids = Object.keys(cfg.drivers).sort((a, b) => driverName(a).localeCompare(driverName(b)));
    $("dp-assign-to").innerHTML = ids.map((id) => `<option value="${esc(id)}"${id === o.driver_id ? " selected" : ""}>${esc(driverName(id))}</option>`).join("");
  }

  let stopsDriver = null;
  let stops = [];
  async function loadStops(driverId) {
    stopsDriver = driverId;
    $("dp-stops-box").hidden = !driverId;
    if (!driverId) return;
    const r = await api("GET", `/api/drivers/${encodeURIComponent(driverId)}/stops`);
    if (!r.ok || stopsDriver !== driverId) return;
    stops = r.body.stops.map((s) => s.order_id);
    const d = drivers.get(driverId);
    if (d) d.stops = stops.slice();
    renderStops();
  }

  function renderStops() {
    $("dp-stops-h").textContent = fill(S.stops_of, { name: driverName(stopsDriver) });
    $("dp-stops").innerHTML = stops.map((id, i) => {
      const o = orders.get(id);
      return `<li data-stop="${esc(id)}"><span>${esc(id)}${o ? ` · ${esc(o.customer)} · ${esc(label(o.stage))}` : ""}</span>
        <button type="button" data-move="-1" aria-label="${esc(fill(S.move_up, { id }))}"${i === 0 ? " disabled" : ""}>↑</button>
        <button type="button" data-move="1" aria-label="${esc(fill(S.move_down, { id }))}"${i === stops.length - 1 ? " disabled" : ""}>↓</button></li>`;
    }).join("");
  }

  // --- wiring -----------------------------------------------------------------------------------------
  $("dp-orders").tBodies[0].addEventListener("click", (e) => {
    const row = e.target.closest("tr[data-order]");
    if (!row) return;
    const id = row.dataset.order;
    if (e.target.classList.contains("dp-pick")) {
      if (e.target.checked) selected.add(id);
      else selected.delete(id);
      renderBulk();
      return;
    }
    focusOrder(id);
  });

  $("dp-drivers").tBodies[0].addEventListener("click", (e) => {
    const row = e.target.closest("tr[data-driver]");
    if (row) focusDriver(row.dataset.driver);
  });

  $("dp-select-all").addEventListener("change", (e) => {
    for (const o of shownOrders(Date.now())) {
      if (e.target.checked) selected.add(o.order_id);
      else selected.delete(o.order_id);
    }
    changed(true);
  });

  for (const th of document.querySelectorAll("#dp-orders th[data-sort]")) {
    th.addEventListener("click", () => {
      sortDir = sortKey === th.dataset.sort ? -sortDir : 1;
      sortKey = th.dataset.sort;
      for (const other of document.querySelectorAll("#dp-orders th[data-sort]")) other.removeAttribute("aria-sort");
      th.setAttribute("aria-sort", sortDir > 0 ? "ascending" : "descending");
      changed(true);
    });
  }

  for (const id of ["dp-search", "dp-filter-stage", "dp-filter-driver", "dp-late-only"]) $(id).addEventListener("input", () => changed(true));
  $("dp-filters").addEventListener("submit", (e) => e.preventDefault());

  $("dp-bulk-stage").innerHTML = cfg.stages.map((s) => `<option value="${esc(s.id)}">${esc(s.label)}</option>`).join("");
  $("dp-bulk-apply").addEventListener("click", async () => {
    const ids = [...selected];
    const stage = $("dp-bulk-stage").value;
    const button = $("dp-bulk-apply");
    button.disabled = true;
    const failed = await moveStage(ids, stage);
    button.disabled = false;
    const done = ids.length - failed.length;
    $("dp-bulk-result").textContent = fill(S.moved, { n: done, stage: label(stage) }) +
      (failed.length ? `; ${fill(S.not_moved, { list: failed.join("; ") })}` : ".");
    $("dp-bulk-result").classList.toggle("dp-bad", failed.length > 0);
    selected.clear();
    changed(true);
  });
  $("dp-bulk-clear").addEventListener("click", () => { selected.clear(); changed(true); });

  $("dp-stage-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const failed = await moveStage([focused], $("dp-stage-to").value);
    $("dp-detail-result").textContent = failed.length ? failed[0] : S.stage_changed;
  });

  $("dp-assign-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const id = focused;
    const r = await api("POST", `/api/orders/${encodeURIComponent(id)}/assign`, { driver_id: $("dp-assign-to").value });
    if (r.ok) applyOrderView(r.body);
    $("dp-detail-result").textContent = r.ok ? fill(S.assigned, { name: driverName(r.body.driver_id) }) : problem(r);
    if (r.ok) loadStops(r.body.driver_id);
  });

  $("dp-stops").addEventListener("click", (e) => {
    const button = e.target.closest("button[data-move]");
    if (!button) return;
    const i = stops.indexOf(button.closest("li").dataset.stop);
    const j = i + Number(button.dataset.move);
    [stops[i], stops[j]] = [stops[j], stops[i]];
    renderStops();
  });

  $("dp-stops-save").addEventListener("click", async () => {
    const r = await api("PUT", `/api/drivers/${encodeURIComponent(stopsDriver)}/stops`, { orders: stops });
    $("dp-detail-result").textContent = r.ok ? S.stops_saved : problem(r);
    if (!r.ok && r.body.error && r.body.error.code === "stops_mismatch") loadStops(stopsDriver); // shown again, as it now is
    if (r.ok) {
      stops = r.body.stops.map((s) => s.order_id);
      const d = drivers.get(stopsDriver);
      if (d) d.stops = stops.slice();
      renderStops();
      changed(true);
    }
  });

  $("dp-detail-close").addEventListener("click", closeDetail);

  socket.start();
})();
