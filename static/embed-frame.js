// In livemap's widget (a page opened with ?embed=1 inside a store's site): tells the framing page
// how tall this page wants to be, whenever that changes. A map page asks for a fixed map-sized height.
(function () {
  "use strict";
  if (window.parent === window) return;
  const MAP_HEIGHT = 640;

  // The content's own height: the document's would never be less than the frame it fills.
  function contentHeight() {
    const bottoms = [...document.body.children].map((el) => el.getBoundingClientRect().bottom);
    return Math.ceil(Math.max(0, ...bottoms) + window.scrollY + 16);
  }

  function report() {
    const map = document.querySelector(".folium-map");
    const height = map ? MAP_HEIGHT : contentHeight();
    window.parent.postMessage({ type: "livemap:height", height }, "*");
  }

  new ResizeObserver(report).observe(document.body);
  report();
})();
