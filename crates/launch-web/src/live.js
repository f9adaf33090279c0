// The run page's one script, served by `launch-host serve` as /live.js (the page's
// Content-Security-Policy allows scripts from the server only, none inline): it follows the
// run's server-sent events and swaps the page body as the journal grows.
(function () {
  var run = document.getElementById("run");
  var status = document.getElementById("live");
  if (!run || !run.dataset.events) { return; }
  var events = new EventSource(run.dataset.events);
  events.onmessage = function (e) {
    var update = JSON.parse(e.data);
    run.innerHTML = update.html;
    document.body.dataset.seq = update.seq;
    status.textContent = "live: " + update.seq + " journal record(s), updated " + new Date().toLocaleTimeString();
  };
  events.onerror = function () { status.textContent = "live: reconnecting…"; };
})();
