// Tiny progressive enhancement; every page works without it.
(function () {
  "use strict";
  // On a phone the operator's and admin's tables are shown as one card per row (style.css):
  // every cell gets its column's heading as a label (data-label), so nothing needs sideways
  // scrolling. Cells that already have a label keep it.
  var labelCells = function (scope) {
    scope.querySelectorAll("table.grid").forEach(function (table) {
      var names = [];
      table.querySelectorAll("thead tr:first-child > th").forEach(function (th) {
        for (var i = 0; i < (th.colSpan || 1); i += 1) {
          names.push(th.textContent.trim());
        }
      });
      if (!names.length) {
        return;
      }
      table.querySelectorAll("tbody tr").forEach(function (tr) {
        var column = 0;
        Array.prototype.forEach.call(tr.children, function (cell) {
          if (names[column] && !cell.hasAttribute("data-label")) {
            cell.setAttribute("data-label", names[column]);
          }
          column += cell.colSpan || 1;
        });
      });
    });
  };
  labelCells(document);
  // Result form: show only the fields that belong to the chosen result kind.
  var form = document.getElementById("result-form");
  if (form) {
    var update = function () {
      var chosen = form.querySelector("input[name=kind]:checked");
      var kind = chosen ? chosen.value : "";
      form.querySelectorAll("[data-for-kind]").forEach(function (el) {
        el.hidden = el.getAttribute("data-for-kind") !== kind;
      });
    };
    form.addEventListener("change", update);
    update();
  }
  // Lists marked data-refresh="N" reload their content every N seconds (the operator's queue):
  // only the list is replaced, so a half-filled filter form is left alone; a failed fetch keeps
  // what is shown and tries again next time.
  document.querySelectorAll("[data-refresh][id]").forEach(function (list) {
    var seconds = parseInt(list.getAttribute("data-refresh"), 10);
    if (!(seconds >= 5) || !window.fetch || !window.DOMParser) {
      return;
    }
    window.setInterval(function () {
      if (document.hidden) {
        return;
      }
      window.fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) {
          if (!html) {
            return;
          }
          var fresh = new DOMParser().parseFromString(html, "text/html").getElementById(list.id);
          if (fresh) {
            list.innerHTML = fresh.innerHTML;
            labelCells(list);
            list.setAttribute("data-refreshed", String(Date.now()));
          }
        })
        .catch(function () { /* offline for a moment: keep the list as it is */ });
    }, seconds * 1000);
  });
  // Ask before destructive actions.
  document.querySelectorAll("button.danger").forEach(function (button) {
    button.addEventListener("click", function (event) {
      if (!window.confirm(document.documentElement.lang === "en" ? "Are you sure?" : "Вы уверены?")) {
        event.preventDefault();
      }
    });
  });
})();
