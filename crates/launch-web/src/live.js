// The server's one script, served by `launch-host serve` as /live.js (its pages'
// Content-Security-Policy allows scripts from the server only, none inline). On a run page it
// follows the run's server-sent events and rebuilds the page body as the journal grows (a
// whole body first, then the lines that changed); on the
// fleet page it reloads the list every few seconds, unless someone is choosing a filter.
(function () {
  var fleet = document.getElementById("fleet");
  if (fleet && fleet.dataset.refresh) {
    setInterval(function () {
      if (document.activeElement && document.activeElement.closest("form.filters")) { return; }
      fetch(location.href, { cache: "no-store" }).then(function (r) { return r.text(); }).then(function (html) {
        var next = new DOMParser().parseFromString(html, "text/html");
        ["fleet-runs", "counts"].forEach(function (id) {
          var now = document.getElementById(id), fresh = next.getElementById(id);
          if (now && fresh) { now.innerHTML = fresh.innerHTML; }
        });
      }).catch(function () {});
    }, Number(fleet.dataset.refresh) * 1000);
    return;
  }
  var run = document.getElementById("run");
  var status = document.getElementById("live");
  if (!run || !run.dataset.events) { return; }
  var events = new EventSource(run.dataset.events);
  // The body as the server last sent it: an update is either a whole body (`html`) or the
  // lines that changed (`ops`: keep n lines, drop -n, insert a string), applied to this.
  var body = null;
  function apply(ops) {
    var lines = body.match(/[^\n]*\n|[^\n]+$/g) || [], out = [], at = 0;
    ops.forEach(function (op) {
      if (typeof op === "string") { out.push(op); }
      else if (op >= 0) { out.push.apply(out, lines.slice(at, at + op)); at += op; }
      else { at -= op; }
    });
    return out.join("");
  }
  events.onmessage = function (e) {
    var update = JSON.parse(e.data);
    if (update.ops && body === null) { return; }
    body = update.ops ? apply(update.ops) : update.html;
    // The groups of decisions someone opened stay open across updates.
    var open = Array.prototype.map.call(run.querySelectorAll("details[open][id]"), function (d) { return d.id; });
    run.innerHTML = body;
    open.forEach(function (id) { var d = document.getElementById(id); if (d) { d.open = true; } });
    document.body.dataset.seq = update.seq;
    status.textContent = "live: " + update.seq + " journal record(s), updated " + new Date().toLocaleTimeString();
  };
  events.onerror = function () { status.textContent = "live: reconnecting…"; };
})();
