// The gift list's progress bar: asks the server every 1.5 s until the gifts are made, then reloads the page to
// show them. Without this script the page refreshes itself (a <noscript> meta refresh).
(function () {
  "use strict";
  var section = document.getElementById("progress");
  if (!section) return;
  var bar = document.getElementById("progress-bar");
  var created = document.getElementById("progress-created");
  function poll() {
    fetch(section.dataset.progressUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (progress) {
        bar.max = progress.total;
        bar.value = progress.created;
        bar.textContent = progress.percent + " %";
        created.textContent = progress.created;
        if (progress.done) { window.location.reload(); } else { window.setTimeout(poll, 1500); }
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  window.setTimeout(poll, 1500);
})();
