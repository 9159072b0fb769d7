// livemap settings page, people: the store's drivers (GET/POST /api/drivers, their tracker apps' device ids,
// a sign-in link and QR code for the driver app) and its dispatcher accounts (/api/dispatchers).
// Needs settings.js (livemapSettings).
(function () {
  "use strict";
  const { cfg, S, $, api, onSubmit } = window.livemapSettings;
  const { el, fill } = window.livemapOffice;
  const seen = new Intl.DateTimeFormat(cfg.lang, {
    timeZone: cfg.timezone, day: "numeric", month: "short", hour: "2-digit", minute: "2-digit",
  });
  const VEHICLES = { car: S.v_car, motorbike: S.v_motorbike, van: S.v_van, bicycle: S.v_bicycle, foot: S.v_foot };

  function failed(err) {
    $("st-status").textContent = fill(S.failed, { error: err.message });
  }

  // The driver's sign-in: the QR code (an SVG made by the server, shown as an image) and the link to copy.
  function showSignIn(created) {
    $("st-signin-h").textContent = fill(S.signin_h, { name: created.name || created.id });
    const img = new Image();
    img.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(created.sign_in_qr)}`;
    img.alt = created.sign_in_url;
    $("st-signin-qr").replaceChildren(img);
    $("st-signin-url").value = created.sign_in_url;
    $("st-signin").hidden = false;
    $("st-signin").scrollIntoView({ block: "nearest" });
  }

  function driverItem(driver) {
    const li = el("li", "st-item st-driver");
    const when = driver.last_seen ? fill(S.driver_last, { time: seen.format(new Date(driver.last_seen)) }) : S.driver_never;
    li.append(el("strong", "", driver.name || driver.id),
      el("span", "an-sub", ` ${driver.id} · ${VEHICLES[driver.vehicle] || driver.vehicle || ""} · ${when}`));
    const devices = el("form", "st-devices");
    const input = Object.assign(el("input"), { name: "devices", value: driver.devices.join(", "), spellcheck: false });
    const label = el("label", "", S.driver_devices);
    label.append(input);
    const save = Object.assign(el("button", "", S.save), { type: "submit" });
    devices.append(label, save, el("span", "st-result"));
    onSubmit(devices, async () => {
      const ids = input.value.split(",").map((d) => d.trim()).filter(Boolean);
      const got = await api("PUT", `/api/drivers/${encodeURIComponent(driver.id)}/devices`, { devices: ids });
      input.value = got.devices.join(", ");
    });
    const link = Object.assign(el("button", "st-plain", S.driver_new_link), { type: "button" });
    link.addEventListener("click", () => {
      api("POST", `/api/drivers/${encodeURIComponent(driver.id)}/token`).then(showSignIn, failed);
    });
    li.append(devices, link);
    return li;
  }

  async function drawDrivers() {
    const { drivers } = await api("GET", "/api/drivers");
    const list = $("st-driver-list");
    list.replaceChildren(...drivers.map(driverItem));
    if (!drivers.length) list.append(el("li", "an-note", S.drivers_none));
  }

  const driverForm = $("st-driver-form");
  onSubmit(driverForm, async () => {
    const f = driverForm.elements;
    const body = { name: f.name.value.trim(), vehicle: f.vehicle.value };
    if (f.id.value.trim()) body.id = f.id.value.trim();
    const created = await api("POST", "/api/drivers", body);
    driverForm.reset();
    showSignIn(created);
    await drawDrivers();
  });

  // --- dispatcher accounts -------------------------------------------------------------------------------
  async function drawDesks() {
    const { dispatchers } = await api("GET", "/api/dispatchers");
    const list = $("st-desk-list");
    list.replaceChildren();
    if (!dispatchers.length) list.append(el("li", "an-note", S.desks_none));
    for (const desk of dispatchers) {
      const li = el("li", "st-item");
      const remove = Object.assign(el("button", "st-plain", S.remove), { type: "button" });
      remove.addEventListener("click", () => {
        if (!window.confirm(fill(S.desk_remove_confirm, { name: desk.name }))) return;
        api("DELETE", `/api/dispatchers/${encodeURIComponent(desk.name)}`).then(drawDesks, failed);
      });
      li.append(el("strong", "", desk.name), remove);
      list.append(li);
    }
  }

  const deskForm = $("st-desk-form");
  onSubmit(deskForm, async () => {
    const f = deskForm.elements;
    await api("POST", "/api/dispatchers", { name: f.name.value.trim(), password: f.password.value });
    deskForm.reset();
    await drawDesks();
  });

  window.addEventListener("DOMContentLoaded", () => {
    drawDrivers().catch(failed);
    drawDesks().catch(failed);
  });
})();
