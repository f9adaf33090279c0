// The server's one script, served by `launch-host serve` as /live.js (its pages'
// Content-Security-Policy allows scripts from the server only, none inline). On a run page it
// follows the run's server-sent events and swaps the page body as the journal grows; on the
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
  events.onmessage = function (e) {
    var update = JSON.parse(e.data);
    // The groups of decisions someone opened stay open across updates.
    var open = Array.prototype.map.call(run.querySelectorAll("details[open][id]"), function (d) { return d.id; });
    run.innerHTML = update.html;
    open.forEach(function (id) { var d = document.getElementById(id); if (d) { d.open = true; } });
    document.body.dataset.seq = update.seq;
    status.textContent = "live: " + update.seq + " journal record(s), updated " + new Date().toLocaleTimeString();
  };
  events.onerror = function () { status.textContent = "live: reconnecting…"; };
})();
