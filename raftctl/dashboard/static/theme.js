// Colour theme before the first paint: the one picked with the toggle (kept in localStorage),
// else the system's (prefers-color-scheme). A separate file because the page's CSP allows no inline script.
(function () {
  "use strict";
  var KEY = "raftctl-theme";
  var ORDER = ["auto", "dark", "light"];

  function stored() {
    try {
      var value = window.localStorage.getItem(KEY);
      return value === "dark" || value === "light" ? value : "auto";
    } catch (e) {
      return "auto";  // storage refused (private mode, file://): follow the system
    }
  }

  function apply(choice) {
    var root = document.documentElement;
    if (choice === "auto") root.removeAttribute("data-theme"); else root.setAttribute("data-theme", choice);
    var button = document.getElementById("theme-toggle");
    if (button) {
      button.textContent = "theme: " + choice;
      button.setAttribute("data-theme-choice", choice);
    }
  }

  function save(choice) {
    try {
      if (choice === "auto") window.localStorage.removeItem(KEY); else window.localStorage.setItem(KEY, choice);
    } catch (e) { /* not kept across reloads then */ }
  }

  var current = stored();
  apply(current);
  document.addEventListener("DOMContentLoaded", function () {
    apply(current);
    var button = document.getElementById("theme-toggle");
    if (!button) return;
    button.addEventListener("click", function () {
      current = ORDER[(ORDER.indexOf(current) + 1) % ORDER.length];
      save(current);
      apply(current);
      window.dispatchEvent(new Event("raftctl-theme"));
    });
  });
  if (window.matchMedia) {
    var query = window.matchMedia("(prefers-color-scheme: dark)");
    var changed = function () { window.dispatchEvent(new Event("raftctl-theme")); };
    if (query.addEventListener) query.addEventListener("change", changed);
  }
})();
