// livemap driver app: sign in with the driver token; on shift, send GPS fixes over /ws/driver (kept on the
// phone while offline and sent as one batch on reconnect); mark stops picked up, delivered or failed.
// No framework, no build step: the page embeds its config (strings, limits) as JSON.
(function () {
  "use strict";
  const cfg = JSON.parse(document.getElementById("dr-config").textContent);
  const S = cfg.strings;
  const $ = (id) => document.getElementById(id);
  const fmt = (text, vars) => text.replace(/\{(\w+)\}/g, (_, k) => (k in vars ? vars[k] : ""));
  const clock = new Intl.DateTimeFormat(cfg.lang, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  const KEY = {
    token: "livemap.driver.token",
    shift: "livemap.driver.shift",
    seq: "livemap.driver.seq",
    buffer: "livemap.driver.buffer",
  };
  const ACK_TIMEOUT_MS = 20000; // a sent fix unanswered this long: the socket is dead even if it looks open

  let token = localStorage.getItem(KEY.token) || "";
  let onShift = false;
  let seq = Number(localStorage.getItem(KEY.seq)) || 0;
  // Every fix not yet acknowledged, oldest first: while connected it holds the few in flight, offline all of
  // them. Kept in localStorage so a reload or a killed tab loses nothing.
  let buffer = loadBuffer();
  let awaitingSince = 0; // when the oldest unanswered message was sent (0: nothing unanswered)
  const flushes = new Map(); // last seq of a reconnect batch -> how many fixes it carried
  let watchId = null;
  let wakeLock = null;
  let battery = null;
  let stops = [];
  let lastAck = null;

  // --- storage ------------------------------------------------------------------------------------
  function loadBuffer() {
    try {
      const saved = JSON.parse(localStorage.getItem(KEY.buffer) || "[]");
      return Array.isArray(saved) ? saved : [];
    } catch {
      return [];
    }
  }

  function saveBuffer() {
    try {
      localStorage.setItem(KEY.buffer, JSON.stringify(buffer));
    } catch {
      /* storage full or blocked: the fixes stay in memory */
    }
    $("dr-buffered").textContent = String(buffer.length);
  }

  // --- status line --------------------------------------------------------------------------------
  function setConn(state) {
    const el = $("dr-conn");
    el.dataset.state = state;
    el.textContent = { online: S.drv_online, connecting: S.drv_connecting, offline: S.drv_offline }[state];
    renderOfflineNote();
  }

  // Offline on shift: say plainly that nothing is lost.
  function renderOfflineNote() {
    $("dr-offline-note").hidden = !(onShift && $("dr-conn").dataset.state === "offline");
  }

  function setGps(state, accuracy) {
    const el = $("dr-gps");
    el.dataset.state = state;
    const text = {
      off: S.drv_gps_off, waiting: S.drv_gps_waiting, denied: S.drv_gps_denied,
      unavailable: S.drv_gps_unavailable, unsupported: S.drv_gps_unsupported,
    };
    el.textContent = state === "ok" ? fmt(S.drv_gps_ok, { m: Math.round(accuracy || 0) }) : text[state];
  }

  function setWake(state) {
    const el = $("dr-wake");
    el.dataset.state = state;
    el.textContent = {
      on: S.drv_wake_on, off: S.drv_wake_off, failed: S.drv_wake_failed, unsupported: S.drv_wake_unsupported,
    }[state];
  }

  function renderShift() {
    const button = $("dr-shift");
    button.textContent = onShift ? S.drv_end_shift : S.drv_start_shift;
    button.classList.toggle("dr-on", onShift);
    $("dr-shift-state").textContent = onShift ? S.drv_on_shift : S.drv_off_shift;
    document.body.classList.toggle("dr-on-shift", onShift);
    renderOfflineNote();
  }

  // --- the driver socket: fixes out, acks and stops in (static/reconnect.js) -----------------------
  const socket = window.livemapSocket.reconnecting({
    cap: 15000, // 0.5 s, 1 s, 2 s ... up to 15 s (jittered): a phone back in coverage resumes sending soon
    url: () => {
      const proto = location.protocol === "https:" ? "wss:" : "ws:";
      return `${proto}//${location.host}/ws/driver?token=${encodeURIComponent(token)}`;
    },
    shouldConnect: () => {
      if (!token) return false;
      // Offline, a new socket would only fail: the "online" event brings us back.
      if (!navigator.onLine) { setConn("offline"); return false; }
      return true;
    },
    onConnecting: () => setConn("connecting"),
    onOpen: () => {
      setConn("online");
      flush();
    },
    onMessage: (ev) => {
      const msg = JSON.parse(ev.data);
      if (msg.type === "stops") { stops = msg.stops; renderStops(); }
      else if (msg.type === "ack") onAck(msg);
      else if (msg.type === "error") onError(msg);
    },
    onClose: (event, info) => {
      setConn("offline");
      if (info.final) checkToken(); // closed for good (4401: the store replaced this token): sign-in, if so
    },
    onRetry: (failures) => {
      if (failures === 3) checkToken(); // a revoked token also looks like a socket that keeps failing
    },
  });

  function connect() {
    socket.start();
  }

  // Forget the socket at once: on a dead network its close could take minutes, and fixes must go to the
  // buffer meanwhile. (Chromium even keeps an open websocket through DevTools' offline switch:
  // microsoft/playwright#4910.)
  function drop() {
    if (!socket.drop()) return;
    awaitingSince = 0;
    setConn("offline");
  }

  function sendFrames(fixes, asBatch) {
    // One message (an array when `asBatch`), unless the server's frame or batch limit would be passed:
    // then consecutive slices.
    const limit = cfg.max_frame_bytes - 1024;
    let chunk = [];
    let bytes = 2;
    const out = [];
    for (const fix of fixes) {
      const size = JSON.stringify(fix).length + 1;
      if (chunk.length && (chunk.length >= cfg.max_batch || bytes + size > limit)) {
        out.push(chunk);
        chunk = [];
        bytes = 2;
      }
      chunk.push(fix);
      bytes += size;
    }
    if (chunk.length) out.push(chunk);
    for (const c of out) socket.send(JSON.stringify(asBatch ? c : c[0]));
    if (!awaitingSince) awaitingSince = Date.now();
  }

  // On (re)connect: everything the phone kept, in order, as one batch.
  function flush() {
    if (!buffer.length) return;
    const batch = buffer.slice();
    flushes.set(batch[batch.length - 1].seq, batch.length);
    sendFrames(batch, true);
  }

  function onAck(msg) {
    if (msg.seq != null) {
      buffer = buffer.filter((f) => f.seq > msg.seq);
      saveBuffer();
      const n = flushes.get(msg.seq);
      if (n) {
        flushes.delete(msg.seq);
        $("dr-flushed").textContent = fmt(S.drv_sent_buffered, { n });
      }
    }
    awaitingSince = buffer.length ? Date.now() : 0;
    lastAck = Date.now();
    $("dr-ack").textContent = clock.format(new Date(lastAck));
  }

  function onError(msg) {
    if (["unavailable", "rate_limited", "internal_error"].includes(msg.code)) {
      // Not stored: keep the fixes and send them again, as one batch, on a fresh socket shortly.
      drop();
      socket.retry();
      return;
    }
    // invalid_fix and friends: the server will never take these, so sending them again would not help.
    if (msg.seq != null) {
      buffer = buffer.filter((f) => f.seq > msg.seq);
      saveBuffer();
    }
    awaitingSince = buffer.length ? Date.now() : 0;
  }

  setInterval(() => {
    if (socket.isOpen() && awaitingSince && Date.now() - awaitingSince > ACK_TIMEOUT_MS) { drop(); socket.retry(); }
  }, 5000);
  window.addEventListener("offline", drop);
  window.addEventListener("online", () => { socket.reset(); connect(); });

  // --- GPS ----------------------------------------------------------------------------------------
  function round(value, digits) {
    const k = 10 ** digits;
    return Math.round(value * k) / k;
  }

  function onPosition(pos) {
    if (!onShift) return;
    const c = pos.coords;
    const fix = { lat: round(c.latitude, 7), lon: round(c.longitude, 7), ts: Math.round(pos.timestamp || Date.now()) };
    if (Number.isFinite(c.accuracy)) fix.accuracy = round(c.accuracy, 1);
    if (Number.isFinite(c.speed) && c.speed >= 0) fix.speed = round(c.speed, 2);
    if (Number.isFinite(c.heading)) fix.heading = round(c.heading, 1);
    if (battery) fix.battery = Math.round(battery.level * 100);
    seq += 1;
    fix.seq = seq;
    localStorage.setItem(KEY.seq, String(seq));
    buffer.push(fix);
    // Past the cap the oldest go: the newest fixes are the ones the customer's ETA needs.
    if (buffer.length > cfg.max_buffer) buffer.splice(0, buffer.length - cfg.max_buffer);
    saveBuffer();
    setGps("ok", c.accuracy);
    if (socket.isOpen()) sendFrames([fix], false);
  }

  function onGpsError(err) {
    if (!onShift) return;
    if (err.code === err.PERMISSION_DENIED) setGps("denied");
    else if (err.code === err.POSITION_UNAVAILABLE) setGps("unavailable");
    else setGps("waiting"); // timeout: the watch goes on
  }

  function startShift() {
    if (!("geolocation" in navigator)) { setGps("unsupported"); return; }
    onShift = true;
    localStorage.setItem(KEY.shift, "1");
    setGps("waiting");
    watchId = navigator.geolocation.watchPosition(onPosition, onGpsError, {
      enableHighAccuracy: true, maximumAge: 0, timeout: 30000,
    });
    acquireWakeLock();
    renderShift();
  }

  // Off shift nothing is watched, sent or kept: the unsent fixes go too.
  function endShift() {
    onShift = false;
    localStorage.removeItem(KEY.shift);
    if (watchId !== null) navigator.geolocation.clearWatch(watchId);
    watchId = null;
    forgetFixes();
    $("dr-flushed").textContent = "";
    releaseWakeLock();
    setGps("off");
    renderShift();
  }

  $("dr-shift").addEventListener("click", () => (onShift ? endShift() : startShift()));

  // --- screen wake lock while on shift --------------------------------------------------------------
  async function acquireWakeLock() {
    if (!("wakeLock" in navigator)) { setWake("unsupported"); return; }
    if (wakeLock) return;
    try {
      const lock = await navigator.wakeLock.request("screen");
      if (!onShift) { lock.release(); return; }
      wakeLock = lock;
      setWake("on");
      lock.addEventListener("release", () => {
        if (wakeLock === lock) wakeLock = null;
        setWake("off");
      });
    } catch {
      setWake("failed"); // e.g. battery saver, or the page is hidden: tried again when it is shown
    }
  }

  function releaseWakeLock() {
    const lock = wakeLock;
    wakeLock = null;
    if (lock) lock.release();
    setWake("off");
  }

  // The browser drops the lock whenever the page is hidden; take it again when the driver comes back.
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && onShift) acquireWakeLock();
  });

  // --- stops ----------------------------------------------------------------------------------------
  async function api(path, options = {}) {
    const headers = { Authorization: `Bearer ${token}`, ...(options.headers || {}) };
    const r = await fetch(path, { ...options, headers, cache: "no-store" });
    let body = null;
    try { body = await r.json(); } catch { /* not JSON */ }
    if (!r.ok) {
      const err = new Error(body && body.error ? body.error.message : `HTTP ${r.status}`);
      err.status = r.status;
      err.body = body;
      throw err;
    }
    return body;
  }

  function stageLabel(stage) {
    return cfg.stages[stage] || stage.replace(/_/g, " ");
  }

  function why(err) {
    if (err.status === 409 && err.body && err.body.error.current) {
      return fmt(S.drv_not_allowed, { stage: stageLabel(err.body.error.current) });
    }
    return fmt(S.drv_action_failed, { reason: err.message });
  }

  const ACTION_LABEL = {
    shipped: "drv_picked_up", delivered: "drv_delivered", failed_attempt: "drv_failed_attempt", returned: "drv_collected",
  };

  function renderStops() {
    const list = $("dr-stops");
    list.replaceChildren();
    $("dr-no-stops").hidden = stops.length > 0;
    stops.forEach((stop, i) => {
      const li = document.createElement("li");
      li.className = "dr-stop";
      li.dataset.trackingId = stop.tracking_id;
      li.dataset.stage = stop.return_leg ? "return_pickup" : stop.stage;
      const head = document.createElement("div");
      head.className = "dr-stop-head";
      const n = document.createElement("span");
      n.className = "dr-n";
      n.textContent = String(i + 1);
      n.setAttribute("aria-hidden", "true");
      const who = document.createElement("div");
      who.className = "dr-who";
      const name = document.createElement("strong");
      name.textContent = stop.customer || `#${stop.order_id}`;
      const addr = document.createElement("span");
      addr.className = "dr-addr";
      addr.textContent = stop.address || (stop.destination ? stop.destination.map((v) => v.toFixed(5)).join(", ") : "");
      const number = document.createElement("span");
      number.className = "dr-order";
      number.textContent = `#${stop.order_id}`;
      who.append(name, addr, number);
      const badge = document.createElement("span");
      badge.className = "dr-badge";
      badge.dataset.stage = stop.return_leg ? "return_pickup" : stop.stage;
      badge.textContent = stop.return_leg ? S.drv_return_pickup : stageLabel(stop.stage);
      head.append(n, who, badge);
      li.append(head);
      const actions = document.createElement("div");
      actions.className = "dr-actions";
      for (const action of stop.actions) {
        const b = document.createElement("button");
        b.type = "button";
        b.className = `dr-act dr-act-${action}`;
        b.dataset.action = action;
        b.textContent = S[ACTION_LABEL[action]];
        b.setAttribute("aria-label", `${S[ACTION_LABEL[action]]}: ${name.textContent}`);
        b.addEventListener("click", () => act(stop, action, b, li));
        actions.append(b);
      }
      if (stop.destination && stop.actions.length) {
        const go = document.createElement("a");
        go.className = "dr-go";
        go.href = `https://www.google.com/maps/dir/?api=1&destination=${stop.destination.join(",")}`;
        go.target = "_blank";
        go.rel = "noopener noreferrer";
        go.textContent = S.drv_directions;
        actions.append(go);
      }
      if (actions.children.length) li.append(actions);
      const error = document.createElement("p");
      error.className = "dr-error";
      error.setAttribute("role", "alert");
      error.hidden = true;
      li.append(error);
      list.append(li);
    });
  }

  function replaceStop(updated) {
    stops = stops.map((s) => (s.tracking_id === updated.tracking_id ? updated : s));
    renderStops();
  }

  function mark(stop, stage, extra) {
    return api(`/api/driver/stops/${encodeURIComponent(stop.tracking_id)}/stage`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ stage, ...extra }),
    });
  }

  let current = null; // the stop a dialog is open for

  async function act(stop, action, button, li) {
    const error = li.querySelector(".dr-error");
    error.hidden = true;
    if (action === "delivered" || action === "failed_attempt") {
      current = stop;
      const id = action === "delivered" ? "dr-deliver" : "dr-fail";
      $(`${id}-stop`).textContent = `${stop.customer || ""} · #${stop.order_id}`;
      $(`${id}-error`).hidden = true;
      $(`${id}-form`).reset();
      $(id).showModal();
      return;
    }
    button.disabled = true;
    try {
      replaceStop(await mark(stop, action, {}));
    } catch (err) {
      error.textContent = why(err);
      error.hidden = false;
      button.disabled = false;
    }
  }

  async function submitDialog(ev, id, run) {
    ev.preventDefault();
    const form = ev.currentTarget;
    const submit = form.querySelector('button[type="submit"]');
    const label = submit.textContent;
    const error = $(`${id}-error`);
    error.hidden = true;
    submit.disabled = true;
    submit.textContent = S.drv_sending;
    try {
      replaceStop(await run(current));
      $(id).close();
    } catch (err) {
      error.textContent = why(err);
      error.hidden = false;
    } finally {
      submit.disabled = false;
      submit.textContent = label;
    }
  }

  $("dr-deliver-form").addEventListener("submit", (ev) => submitDialog(ev, "dr-deliver", async (stop) => {
    const file = $("dr-photo").files[0];
    if (file) {
      // The photo first: the customer's page reads the proof as soon as it sees "delivered".
      const photo = await window.livemapPhoto.shrink(file);
      await api(`/api/driver/stops/${encodeURIComponent(stop.tracking_id)}/proof`, {
        method: "POST", headers: { "Content-Type": photo.type || "application/octet-stream" }, body: photo,
      });
    }
    const recipient = $("dr-recipient").value.trim();
    return mark(stop, "delivered", recipient ? { recipient } : {});
  }));

  $("dr-fail-form").addEventListener("submit", (ev) => submitDialog(ev, "dr-fail", (stop) => {
    const note = $("dr-note").value.trim();
    return mark(stop, "failed_attempt", note ? { note } : {});
  }));

  for (const button of document.querySelectorAll("[data-close]")) {
    button.addEventListener("click", () => button.closest("dialog").close());
  }

  // --- sign in / out --------------------------------------------------------------------------------
  function showSignIn(message) {
    $("dr-app").hidden = true;
    $("dr-signout").hidden = true;
    $("dr-name").textContent = "";
    $("dr-signin").hidden = false;
    const error = $("dr-signin-error");
    error.hidden = !message;
    error.textContent = message || "";
    $("dr-token").focus();
  }

  function showApp(me) {
    $("dr-signin").hidden = true;
    $("dr-app").hidden = false;
    $("dr-signout").hidden = false;
    if (me) {
      $("dr-name").textContent = me.name;
      stops = me.stops;
      renderStops();
    }
    connect();
    if (localStorage.getItem(KEY.shift) === "1" && !onShift) startShift(); // a reload keeps the shift on
  }

  function forgetFixes() {
    buffer = [];
    flushes.clear();
    awaitingSince = 0;
    saveBuffer();
  }

  function signOut(message) {
    if (onShift) endShift();
    forgetFixes();
    localStorage.removeItem(KEY.shift);
    drop();
    socket.stop(); // and no reconnect is pending
    token = "";
    stops = [];
    renderStops();
    localStorage.removeItem(KEY.token);
    showSignIn(message);
  }

  async function checkToken() {
    try {
      return await api("/api/driver");
    } catch (err) {
      if (err.status === 401 || err.status === 403) signOut(S.drv_bad_token);
      return null; // offline or the server is away: carry on with what the phone has
    }
  }

  $("dr-signin").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const candidate = $("dr-token").value.trim();
    const button = ev.currentTarget.querySelector("button");
    button.disabled = true;
    token = candidate;
    try {
      const me = await api("/api/driver");
      localStorage.setItem(KEY.token, candidate);
      $("dr-token").value = "";
      showApp(me);
    } catch (err) {
      token = "";
      showSignIn(err.status === 401 || err.status === 403 ? S.drv_bad_token : S.drv_network);
    } finally {
      button.disabled = false;
    }
  });

  $("dr-signout").addEventListener("click", () => signOut(null));

  // --- start ------------------------------------------------------------------------------------------
  if (navigator.getBattery) navigator.getBattery().then((b) => { battery = b; }, () => {});
  // A dispatcher's link: /driver#token=... (the fragment never reaches the server or its logs).
  const fromLink = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fromLink) {
    history.replaceState(null, "", location.pathname + location.search);
    if (fromLink !== token) {
      // Another driver on this phone: nothing of the previous one's shift may be sent as the new one's.
      forgetFixes();
      localStorage.removeItem(KEY.shift);
      token = fromLink;
      localStorage.setItem(KEY.token, token);
    }
  }
  saveBuffer();
  renderShift();
  renderStops();
  if (!token) {
    showSignIn(null);
  } else {
    // Straight into the app, even offline (a shift may start in a dead zone); the check runs alongside.
    showApp(null);
    checkToken().then((me) => {
      if (me) {
        $("dr-name").textContent = me.name;
        if (!socket.isOpen()) { stops = me.stops; renderStops(); }
      }
    });
  }
})();
