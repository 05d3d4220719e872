// Tiny progressive enhancement; every page works without it.
(function () {
  "use strict";
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
  // Ask before destructive actions.
  document.querySelectorAll("button.danger").forEach(function (button) {
    button.addEventListener("click", function (event) {
      if (!window.confirm(document.documentElement.lang === "en" ? "Are you sure?" : "Вы уверены?")) {
        event.preventDefault();
      }
    });
  });
})();
