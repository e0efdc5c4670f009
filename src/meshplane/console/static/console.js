// meshplane console: live updates without reloading the page.
// Every few seconds the page's own URL is fetched with ?fragment=1 (the same server-rendered
// content, without the shell) and swapped into <main>. No framework, no build step, no CDN.
(function () {
  "use strict";
  var main = document.getElementById("content");
  if (!main) { return; }
  var seconds = parseInt(main.getAttribute("data-refresh") || "5", 10);
  var busy = false;

  function fragmentUrl() {
    var url = new URL(window.location.href);
    url.searchParams.set("fragment", "1");
    url.hash = "";
    return url.toString();
  }

  function refresh() {
    if (busy || document.hidden) { return; }
    busy = true;
    fetch(fragmentUrl(), { headers: { "Accept": "text/html" }, cache: "no-store" })
      .then(function (r) {
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        return r.text();
      })
      .then(function (html) {
        main.innerHTML = html;
        main.removeAttribute("data-stale");
        document.dispatchEvent(new CustomEvent("console:updated"));
      })
      .catch(function () {
        // the control plane is restarting or unreachable: keep the last view, mark it stale
        main.setAttribute("data-stale", "true");
      })
      .finally(function () { busy = false; });
  }

  if (seconds > 0) { window.setInterval(refresh, seconds * 1000); }
})();
