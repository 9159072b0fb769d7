// livemap's tracking widget, for a store's own site:
//   <script src="https://LIVEMAP/embed.js" data-store="STORE_ID" data-lang="es" async></script>
// puts the "track your order" form (then the order's live tracking) in an iframe right after the tag,
// sized to its content. The store lists its site's origin in its settings (embed.origins): livemap's
// pages refuse to be framed anywhere else.
(function () {
  "use strict";
  const tag = document.currentScript;
  if (!tag || !tag.dataset.store) return;
  const origin = new URL(tag.src).origin;
  const src = new URL("/track", origin);
  src.searchParams.set("store", tag.dataset.store);
  src.searchParams.set("embed", "1");
  if (tag.dataset.lang) src.searchParams.set("lang", tag.dataset.lang);
  const frame = document.createElement("iframe");
  frame.src = src.href;
  frame.title = tag.dataset.title || "Order tracking";
  frame.className = "livemap-widget";
  frame.style.cssText = "display:block;width:100%;max-width:760px;height:420px;border:0;";
  frame.setAttribute("referrerpolicy", "no-referrer");
  tag.insertAdjacentElement("afterend", frame);
  window.addEventListener("message", (event) => {
    // Only our own frame's word about its height: another origin or frame cannot resize it.
    if (event.origin !== origin || event.source !== frame.contentWindow) return;
    const data = event.data;
    if (data && data.type === "livemap:height" && Number.isFinite(data.height)) {
      frame.style.height = Math.max(200, Math.min(2000, Math.round(data.height))) + "px";
    }
  });
})();
