// livemap settings page, first of three scripts: the shared core (`livemapSettings`), then the store's name,
// branding with its live preview, custom stages and shop integrations. Everything is read with
// GET /api/store and changed with PATCH /api/store (a JSON merge patch) through the owner's session.
// settings-notify.js and settings-people.js add their sections with the core.
(function () {
  "use strict";
  const cfg = JSON.parse(document.getElementById("st-config").textContent);
  const S = cfg.strings;
  const $ = (id) => document.getElementById(id);
  const { el, fill } = window.livemapOffice;
  const api = window.livemapOffice.client(cfg.csrf, S.offline);
  const MASK = "********"; // a stored secret, as the API reads it back
  const loaded = []; // sections' functions called with the store's settings, on load and after each save

  // A form's submit, its button disabled while `work()` runs, the outcome in the form's result line: what
  // `work()` returns, else "Saved.".
  function onSubmit(form, work) {
    const result = form.querySelector(".st-result");
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      result.textContent = "";
      result.classList.remove("st-bad");
      try {
        result.textContent = (await work()) || S.saved;
      } catch (err) {
        result.textContent = fill(S.failed, { error: err.message });
        result.classList.add("st-bad");
      } finally {
        button.disabled = false;
      }
    });
  }

  async function patch(body) {
    const store = await api("PATCH", "/api/store", body);
    loaded.forEach((fn) => fn(store));
    return store;
  }

  // A secret field: empty with a note when one is stored; sent only when something new was typed.
  function showSecret(input, value) {
    input.value = "";
    input.placeholder = value ? MASK : "";
    input.title = value ? S.secret_kept : "";
  }
  const secret = (input) => (input.value ? input.value : undefined);
  const text = (input) => input.value.trim() || null; // an emptied field removes the setting

  document.addEventListener("click", (ev) => {
    const target = ev.target.closest("[data-copy]");
    if (!target) return;
    const input = $(target.dataset.copy);
    input.select();
    navigator.clipboard.writeText(input.value).then(() => { target.textContent = S.copied; }, () => {});
  });

  // --- store and branding, with the preview following every change before it is saved ------------------
  const brand = $("st-brand-form");
  const preview = $("st-preview");
  let previewTimer = null;

  function previewUrl() {
    const f = brand.elements;
    const query = new URLSearchParams({
      lang: cfg.lang, name: f.name.value, logo_url: f.logo_url.value, primary_color: f.primary_color.value,
      accent_color: f.accent_color.value, template: f.template.value,
    });
    return `/dispatch/settings/preview?${query}`;
  }

  brand.addEventListener("input", () => {
    clearTimeout(previewTimer);
    previewTimer = setTimeout(() => { preview.src = previewUrl(); }, 400);
  });

  const title = document.querySelector(".dp-title").firstChild; // the store's name before "Settings"
  loaded.push((store) => {
    const f = brand.elements;
    const b = store.branding;
    title.nodeValue = `${store.name} `;
    f.name.value = store.name;
    f.locale.value = store.locale;
    f.timezone.value = store.timezone;
    f.logo_url.value = b.logo_url || "";
    f.primary_color.value = b.primary_color;
    f.accent_color.value = b.accent_color;
    f.template.value = b.template;
  });

  onSubmit(brand, async () => {
    const f = brand.elements;
    await patch({
      name: f.name.value.trim(), locale: f.locale.value, timezone: f.timezone.value.trim(),
      branding: { logo_url: text(f.logo_url), primary_color: f.primary_color.value,
        accent_color: f.accent_color.value, template: f.template.value },
    });
    preview.src = previewUrl();
  });

  // --- custom stages -----------------------------------------------------------------------------------
  const stageForm = $("st-stage-form");
  let customStages = [];

  function drawStages(store) {
    customStages = store.stages.custom;
    const list = $("st-stage-list");
    list.replaceChildren();
    if (!customStages.length) list.append(el("li", "an-note", S.stages_none));
    const label = (s) => (s.labels && (s.labels[cfg.lang] || s.labels.en)) || s.id;
    const known = [...cfg.stages.map((s) => [s.id, s.label]), ...customStages.map((s) => [s.id, label(s)])];
    const name = (id) => (known.find(([k]) => k === id) || [id, id])[1];
    for (const stage of customStages) {
      const li = el("li", "st-item");
      li.append(el("strong", "", label(stage)), el("span", "an-sub", ` ${stage.id} · ${fill(S.stage_line, { after: name(stage.after) })}`));
      if (stage.live) li.append(el("span", "or-badge", S.stage_live_badge));
      const remove = el("button", "st-plain", S.remove);
      remove.type = "button";
      remove.addEventListener("click", () => patch({ stages: { custom: customStages.filter((s) => s.id !== stage.id) } })
        .catch((err) => { $("st-status").textContent = fill(S.failed, { error: err.message }); }));
      li.append(remove);
      list.append(li);
    }
    const after = $("st-stage-after");
    const chosen = after.value;
    after.replaceChildren(...known.map(([id, text]) => Object.assign(el("option", "", text), { value: id })));
    if (chosen) after.value = chosen;
  }
  loaded.push(drawStages);

  onSubmit(stageForm, async () => {
    const f = stageForm.elements;
    const labels = {};
    for (const code of Object.keys(cfg.languages)) {
      const value = f[`label_${code}`].value.trim();
      if (value) labels[code] = value;
    }
    const stage = { id: f.id.value.trim(), after: f.after.value, live: f.live.checked, labels };
    await patch({ stages: { custom: [...customStages, stage] } });
    stageForm.reset();
  });

  // --- shop integrations: the webhook secret, and the credentials to write the tracking link back --------
  for (const form of document.querySelectorAll("form[data-platform]")) {
    const platform = form.dataset.platform;
    const creds = [...form.elements].filter((i) => i.name.startsWith("wb_") && i.name !== "wb_url");
    loaded.push((store) => {
      const shop = store.integrations[platform] || {};
      const back = shop.write_back || {};
      showSecret(form.elements.secret, shop.secret);
      form.elements.wb_url.value = back.url || "";
      creds.forEach((input) => showSecret(input, back[input.name.slice(3)]));
    });
    onSubmit(form, async () => {
      const url = text(form.elements.wb_url);
      const back = { url };
      creds.forEach((input) => { back[input.name.slice(3)] = secret(input) || (input.placeholder ? MASK : undefined); });
      const body = { secret: secret(form.elements.secret), write_back: url ? back : null };
      await patch({ integrations: { [platform]: body } });
    });
  }

  window.livemapSettings = { cfg, S, $, api, patch, onSubmit, showSecret, secret, text, loaded };

  // After every script has added its section: the store's settings, once.
  window.addEventListener("DOMContentLoaded", async () => {
    try {
      const store = await api("GET", "/api/store");
      loaded.forEach((fn) => fn(store));
      $("st-status").textContent = "";
    } catch (err) {
      $("st-status").textContent = fill(S.failed, { error: err.message });
    }
  });
})();
