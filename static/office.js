// livemap back office helpers, shared by the returns and orders pages (each loads this file before its own
// script). No framework, no build step: one global, `livemapOffice`.
(function () {
  "use strict";

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  const fill = (text, vars) => text.replace(/\{(\w+)\}/g, (_, k) => (k in vars ? vars[k] : ""));

  // JSON calls through the dispatcher's session (its CSRF token). A failed call throws with the API's error
  // code; one that never reached the server throws `offlineText` with `offline` set; a lost session reloads
  // the page (to its sign-in).
  function client(csrf, offlineText) {
    return async function api(method, path, body) {
      const headers = { "X-CSRF-Token": csrf };
      if (body !== undefined) headers["Content-Type"] = "application/json";
      const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "same-origin" }).catch(() => {
        throw Object.assign(new Error(offlineText), { offline: true });
      });
      if (r.status === 401) location.reload();
      const data = await r.json().catch(() => ({}));
      if (!r.ok) throw Object.assign(new Error(data.error ? data.error.message : `HTTP ${r.status}`),
        { code: data.error && data.error.code });
      return data;
    };
  }

  // A photo the session may read, small; a click opens it full size.
  function photoLink(href, alt) {
    const link = el("a", "rt-photo");
    link.href = href;
    link.target = "_blank";
    const img = new Image();
    img.src = href;
    img.alt = alt;
    img.loading = "lazy";
    link.append(img);
    return link;
  }

  window.livemapOffice = { el, fill, client, photoLink };
})();
