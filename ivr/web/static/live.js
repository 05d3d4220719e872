// The live page (/live): redraw its tables from /live.json every few seconds, without a reload.
// Texts come from the server (data-labels, and translated fields in the JSON); every value is set
// with textContent, never as HTML. A failed fetch keeps what is shown and marks it stale.
(function () {
  "use strict";
  var root = document.getElementById("live");
  if (!root || !window.fetch) {
    return;
  }
  var seconds = parseInt(root.getAttribute("data-refresh-live"), 10) || 5;
  var labels = JSON.parse(root.getAttribute("data-labels") || "{}");
  var isAdmin = root.getAttribute("data-admin") === "1";
  var csrf = root.getAttribute("data-csrf") || "";
  // issue 14: instants arrive as UTC ISO strings and are shown in the user's zone, as the server
  // renders them ("2025-11-19 13:05"); a browser without the zone keeps the ISO text
  var zoneName = root.getAttribute("data-tz") || "UTC";
  var clock = null;
  try {
    clock = new Intl.DateTimeFormat("sv-SE", { timeZone: zoneName, year: "numeric", month: "2-digit", day: "2-digit",
                                               hour: "2-digit", minute: "2-digit", hour12: false });
  } catch (e) {
    clock = null;
  }
  function when(iso) {
    if (!iso || !clock) {
      return iso;
    }
    var at = new Date(iso);
    return isNaN(at.getTime()) ? iso : clock.format(at);
  }

  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) {
      node.textContent = String(text);
    }
    if (cls) {
      node.className = cls;
    }
    return node;
  }
  function row(cells, attrs) {
    var tr = document.createElement("tr");
    cells.forEach(function (cell) {
      tr.appendChild(cell instanceof Node ? cell : el("td", cell));
    });
    Object.keys(attrs || {}).forEach(function (name) { tr.setAttribute(name, attrs[name]); });
    return tr;
  }
  function num(value) {
    return el("td", value, "num");
  }
  function empty(cols, text) {
    var td = el("td", text, "muted");
    td.colSpan = cols;
    return row([td]);
  }
  function fill(id, rows) {
    var body = document.getElementById(id);
    if (!body) {
      return;
    }
    while (body.firstChild) {
      body.removeChild(body.firstChild);
    }
    rows.forEach(function (r) { body.appendChild(r); });
  }
  function what(p) {
    return p.scope === "global" ? labels.global : (labels[p.scope] || p.scope) + " " + (p.key_label || p.key);
  }
  function resumeForm(p) {
    var td = document.createElement("td");
    if (!isAdmin) {
      return td;
    }
    var form = document.createElement("form");
    form.method = "post";
    form.action = "/live/resume";
    form.className = "inline";
    [["csrf", csrf], ["pause_id", String(p.id)]].forEach(function (pair) {
      var input = document.createElement("input");
      input.type = "hidden";
      input.name = pair[0];
      input.value = pair[1];
      form.appendChild(input);
    });
    var button = el("button", labels.resume);
    button.type = "submit";
    form.appendChild(button);
    td.appendChild(form);
    return td;
  }
  function draw(data) {
    document.getElementById("live-at").textContent = when(data.at);
    fill("live-pauses", data.pauses.length ? data.pauses.map(function (p) {
      var strong = document.createElement("td");
      strong.appendChild(el("strong", what(p)));
      return row([strong, p.who, when(p.since), p.why, resumeForm(p)], { "data-pause": p.scope + ":" + p.key });
    }) : [empty(5, labels.no_pauses)]);
    fill("live-lines", data.lines.map(function (l) {
      return row([l.server, num(l.in_use), num(l.limit === null ? "?" : l.limit), l.paused ? labels.paused : ""]);
    }));
    fill("live-calls", data.calls.length ? data.calls.map(function (c) {
      return row([c.account, c.stage_label || c.stage, c.server, c.step_label, num(c.seconds)], { "data-call": c.id, "data-stage": c.stage });
    }) : [empty(5, labels.no_calls)]);
    fill("live-queues", data.queues.length ? data.queues.map(function (q) {
      return row([q.label || q.queue, num(q.raised_today), num(q.done_today), num(q.open)]);
    }) : [empty(4, labels.no_queues)]);
    var health = [];
    if (!data.health.running) {
      health.push(el("li", labels.not_running, "err"));
    }
    data.health.ami.forEach(function (a) {
      health.push(el("li", "AMI " + a.server + ": " + (a.connected ? labels.connected : labels.down + " " + a.last_error) + " (" + when(a.since) + ")"));
    });
    data.health.agi.forEach(function (a) { health.push(el("li", "FastAGI " + a.address)); });
    data.health.dialing.forEach(function (d) {
      health.push(el("li", labels.dialing + ": " + (d.ok ? labels.ok : labels.stopped + " " + d.reason) + " (" + when(d.since) + ")"));
    });
    data.health.last_errors.forEach(function (e) {
      health.push(el("li", [when(e.at), e.server, e.result_label || e.result, e.cause === null ? "" : e.cause].join(" "), "muted"));
    });
    fill("live-health", health);
    document.querySelectorAll("[data-plan]").forEach(function (cell) {
      var value = data.plan;
      cell.getAttribute("data-plan").split(".").forEach(function (part) {
        value = value === null || value === undefined ? undefined : value[part];
      });
      cell.textContent = value === null || value === undefined ? "" : String(value);
    });
    var outcomes = Object.keys(data.outcomes_today).sort().map(function (k) {
      return ((data.outcome_labels || {})[k] || k) + ": " + data.outcomes_today[k];
    });
    document.getElementById("live-outcomes").textContent = outcomes.join(", ");
    drawForecast(data.forecast, data.forecast_error);
    root.setAttribute("data-updated", String(Date.now()));
    root.classList.remove("stale");
    document.getElementById("live-state").textContent = every;
  }
  function drawForecast(fc, error) {
    var basis = document.getElementById("live-forecast-basis");
    if (!basis) {
      return;
    }
    if (!fc) {
      basis.textContent = error ? labels.fc_failed + error : labels.fc_pending;
      return;
    }
    basis.textContent = fc.plan_line + "; " + fc.basis + " (" + fc.tz_line + ")";
    fill("live-forecast-lines", fc.by_lines.map(function (r) {
      var lines = r.lines + (r.lines === fc.lines ? " (" + labels.fc_current + ")" : "");
      return row([num(lines), r.finish_local || labels.fc_nothing,
                  num(r.hours_from_open === null ? "" : r.hours_from_open), num(r.answered), num(r.left_over)],
                 { "data-lines": r.lines });
    }));
    fill("live-forecast-queues", fc.callbacks.map(function (q) {
      return row([q.label, num(q.today), num(q.tomorrow)], { "data-queue": q.queue });
    }));
  }
  var every = document.getElementById("live-state").textContent;
  function stale() {
    root.classList.add("stale");
    document.getElementById("live-state").textContent = labels.stale;
  }
  function poll() {
    if (document.hidden) {
      return;
    }
    window.fetch("/live.json", { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (data) {
          draw(data);
        } else {
          stale();
        }
      })
      .catch(stale);
  }
  window.setInterval(poll, seconds * 1000);
})();
