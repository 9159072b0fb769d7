// livemap settings page, notifications: who hears about what (`notifications.events`), the email, SMS and
// webhook channels, the messages' wording per language with a preview (POST /api/store/notifications/preview)
// and a test send to the owner (POST /api/store/notifications/test). Needs settings.js (livemapSettings).
(function () {
  "use strict";
  const { cfg, S, $, api, patch, onSubmit, showSecret, secret, text, loaded } = window.livemapSettings;
  const { el, fill } = window.livemapOffice;
  const CHANNELS = ["email", "sms", "webhook"];

  // --- who hears about what: a checkbox per event and channel ------------------------------------------
  const events = $("st-events");
  for (const event of cfg.events) {
    const row = el("tr");
    row.append(el("th", "", event.label));
    for (const channel of CHANNELS) {
      const cell = el("td");
      const box = Object.assign(el("input"), { type: "checkbox", name: `${event.id}:${channel}` });
      box.setAttribute("aria-label", `${event.label}: ${S[channel]}`);
      cell.append(box);
      row.append(cell);
    }
    events.append(row);
  }
  const eventsForm = $("st-events-form");
  loaded.push((store) => {
    const chosen = store.notifications.events || {};
    for (const box of eventsForm.querySelectorAll("input[type=checkbox]")) {
      const [event, channel] = box.name.split(":");
      box.checked = (chosen[event] || []).includes(channel);
    }
  });
  onSubmit(eventsForm, async () => {
    // An event with no channel left is removed (null); keys the page does not show (`*`) are left alone.
    const chosen = {};
    for (const event of cfg.events) {
      const on = CHANNELS.filter((c) => eventsForm.elements[`${event.id}:${c}`].checked);
      chosen[event.id] = on.length ? on : null;
    }
    await patch({ notifications: { events: chosen } });
  });

  // --- the channels ------------------------------------------------------------------------------------
  const email = $("st-email-form");
  const sms = $("st-sms-form");
  const hook = $("st-webhook-form");
  loaded.push((store) => {
    const n = store.notifications;
    const e = n.email || {};
    const f = email.elements;
    f.host.value = e.host || "";
    f.port.value = e.port || 587;
    f.starttls.checked = e.starttls !== false;
    f.username.value = e.username || "";
    showSecret(f.password, e.password);
    f.from.value = e.from || "";
    f.default.value = e.default || "on";
    const s = n.sms || {};
    sms.elements.url.value = s.url || "";
    sms.elements.username.value = s.username || "";
    showSecret(sms.elements.password, s.password);
    sms.elements.format.value = s.format || "form";
    sms.elements.default.value = s.default || "opt_in";
    hook.elements.url.value = (n.webhook && n.webhook.url) || "";
    showSecret(hook.elements.secret, n.webhook && n.webhook.secret);
  });
  onSubmit(email, async () => {
    const f = email.elements;
    await patch({ notifications: { email: {
      host: text(f.host), port: Number(f.port.value) || 587, starttls: f.starttls.checked, username: text(f.username),
      password: secret(f.password), from: text(f.from), default: f.default.value,
    } } });
  });
  onSubmit(sms, async () => {
    const f = sms.elements;
    await patch({ notifications: { sms: {
      url: text(f.url), username: text(f.username), password: secret(f.password), format: f.format.value,
      default: f.default.value,
    } } });
  });
  onSubmit(hook, async () => {
    const f = hook.elements;
    await patch({ notifications: { webhook: { url: text(f.url), secret: secret(f.secret) } } });
  });

  // --- wording per language, its preview, and a test send -----------------------------------------------
  const texts = $("st-texts-form");
  const messages = $("st-texts-event");
  const WORDED = ["shipped", "delivered", "failed_attempt", "cancelled"]; // stages with a sentence of their own
  let stored = {}; // notifications.texts as saved
  let previewTimer = null;
  $("st-texts-help").textContent = fill(S.texts_help, { fields: cfg.placeholders.map((p) => `{${p}}`).join(" ") });
  messages.append(...cfg.messages.map((m) => Object.assign(el("option", "", m.label), { value: m.id })));

  // The templates' keys a message is written with: its subject, its line (see livemap/notify/templates.py).
  function keys(event) {
    if (event === "arriving" || event === "delayed") return [`${event}_subject`, event];
    if (event.startsWith("return_")) return ["return_subject", event];
    return ["subject", WORDED.includes(event) ? event : "stage"];
  }
  const wording = (lang, key) => (stored[lang] && stored[lang][key]) || cfg.defaults[lang][key];

  function showWording() {
    const f = texts.elements;
    const [subject, line] = keys(f.event.value);
    f.subject.value = wording(f.lang.value, subject);
    f.line.value = wording(f.lang.value, line);
    showPreview();
  }

  // What the form says, as `notifications.texts` entries: the standard wording is sent as "none of ours".
  function edited() {
    const f = texts.elements;
    const lang = f.lang.value;
    const [subject, line] = keys(f.event.value);
    const own = (key, value) => (value.trim() && value !== cfg.defaults[lang][key] ? value : null);
    return { lang, entries: { [subject]: own(subject, f.subject.value), [line]: own(line, f.line.value) } };
  }

  async function showPreview() {
    const { lang, entries } = edited();
    const unsaved = Object.fromEntries(Object.entries(entries).filter(([, v]) => v !== null));
    const box = $("st-texts-preview");
    try {
      const got = await api("POST", "/api/store/notifications/preview", { lang, event: texts.elements.event.value, texts: unsaved });
      box.querySelector(".st-mail-subject").textContent = got.subject;
      box.querySelector(".st-mail-text").textContent = got.text;
      box.querySelector(".st-mail-sms").textContent = `SMS: ${got.sms}`;
      box.classList.remove("st-bad");
    } catch (err) {
      box.querySelector(".st-mail-subject").textContent = fill(S.failed, { error: err.message });
      box.classList.add("st-bad");
    }
  }

  loaded.push((store) => {
    stored = store.notifications.texts || {};
    showWording();
  });
  texts.elements.lang.addEventListener("change", showWording);
  messages.addEventListener("change", showWording);
  for (const field of [texts.elements.subject, texts.elements.line]) {
    field.addEventListener("input", () => { clearTimeout(previewTimer); previewTimer = setTimeout(showPreview, 300); });
  }
  onSubmit(texts, async () => {
    const { lang, entries } = edited();
    await patch({ notifications: { texts: { [lang]: entries } } });
  });
  $("st-texts-reset").addEventListener("click", () => {
    const f = texts.elements;
    const [subject, line] = keys(f.event.value);
    f.subject.value = cfg.defaults[f.lang.value][subject];
    f.line.value = cfg.defaults[f.lang.value][line];
    texts.requestSubmit();
  });

  const test = $("st-test-form");
  onSubmit(test, async () => {
    const f = test.elements;
    const to = f.to.value.trim();
    await api("POST", "/api/store/notifications/test", {
      channel: f.channel.value, to, lang: texts.elements.lang.value, event: texts.elements.event.value,
    });
    return fill(S.test_sent, { to });
  });
})();
