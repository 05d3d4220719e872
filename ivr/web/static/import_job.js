// The import job's page (/admin/import/jobs/<id>): while the import runs in the background,
// ask /admin/import/jobs/<id>.json every second, move the progress bar, and reload the page
// once the import is done (the page then shows the report). Without script, a link reloads it.
(function () {
  "use strict";
  var root = document.getElementById("import-job");
  if (!root || !window.fetch) {
    return;
  }
  var status = root.getAttribute("data-status");
  if (status !== "queued" && status !== "running") {
    return;
  }
  var url = "/admin/import/jobs/" + encodeURIComponent(root.getAttribute("data-job")) + ".json";
  var bar = document.getElementById("job-progress");
  function poll() {
    fetch(url, {credentials: "same-origin", cache: "no-store"})
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (!data) {
          window.setTimeout(poll, 3000);
          return;
        }
        if (bar) {
          bar.value = data.percent;
          bar.textContent = data.percent + " %";
        }
        if (data.status === "done" || data.status === "failed") {
          window.location.reload();
          return;
        }
        window.setTimeout(poll, 1000);
      })
      .catch(function () { window.setTimeout(poll, 3000); });
  }
  window.setTimeout(poll, 500);
})();
