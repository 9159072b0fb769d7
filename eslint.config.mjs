// ESLint for the browser scripts (`make check` runs it on static/*.js). Plain scripts, no modules and no
// build step: each page loads them with <script defer>, so they share the page's globals.
import js from "@eslint/js";
import globals from "globals";

export default [
  // Vendored Leaflet, its plugin and Chart.js are not ours to lint; livemap/web/pages/static is a symlink to static/.
  { ignores: ["static/vendor/**", "livemap/web/pages/static/**", "node_modules/**", ".venv/**", "build/**"] },
  js.configs.recommended,
  {
    files: ["static/**/*.js"],
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: "script",
      globals: {
        ...globals.browser,
        L: "readonly", // Leaflet (static/vendor/leaflet), loaded before the page scripts
        Chart: "readonly", // Chart.js (static/vendor/chartjs), loaded before static/analytics.js
      },
    },
  },
];
