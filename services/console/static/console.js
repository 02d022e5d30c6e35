// Progressive enhancement: the overview's figures refresh themselves every few seconds while
// the page is visible. Without JavaScript the page is the same, refreshed by hand.
(function () {
  var live = document.getElementById("live");
  if (!live || !window.fetch) return;
  var url = live.getAttribute("data-live");
  function refresh() {
    if (document.hidden) return;
    fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) { if (html !== null) { live.innerHTML = html; } })
      .catch(function () { /* the next tick tries again */ });
  }
  setInterval(refresh, 5000);
})();
