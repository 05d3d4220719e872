// The account card's click-to-call: polls the task's call-status JSON and shows the latest
// operator call's state (ringing, talking, ended) and duration. Stops polling once the call has
// ended (placing a new call reloads the page, which starts polling again).
(function () {
  "use strict";
  var box = document.getElementById("call-status");
  if (!box || !window.fetch) {
    return;
  }
  var url = box.getAttribute("data-url");
  var stateEl = box.querySelector(".call-state");
  var durationEl = box.querySelector(".call-duration");
  var overrideEl = box.querySelector(".call-override");
  var timer = null;
  var stop = function () {
    if (timer !== null) {
      window.clearInterval(timer);
      timer = null;
    }
  };
  var show = function (call) {
    if (!call) {
      box.hidden = true;
      stop();
      return;
    }
    box.hidden = false;
    box.setAttribute("data-state", call.state);
    stateEl.textContent = call.label;
    durationEl.textContent = call.duration_s === null ? "—" : String(call.duration_s);
    overrideEl.textContent = call.override_reason ? "· " + call.override_reason : "";
    if (call.state === "ended") {
      stop();
    }
  };
  var poll = function () {
    window.fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) { if (data) { show(data.call); } })
      .catch(function () { /* offline for a moment: try again next time */ });
  };
  poll();
  timer = window.setInterval(poll, 2000);
})();
