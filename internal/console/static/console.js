// Updraft console: the upload progress bar and the live job page. Plain
// JavaScript, no library; every page works without it except these two
// enhancements (the forms post normally).
"use strict";
(function () {
  var csrf = (document.getElementById("main") || {}).dataset ? document.getElementById("main").dataset.csrf : "";

  // Forms that ask first (the job's action forms ask in their own handler).
  document.querySelectorAll("form.confirm").forEach(function (f) {
    if (f.closest("#job-actions")) return;
    f.addEventListener("submit", function (e) {
      if (!window.confirm(f.dataset.confirm)) e.preventDefault();
    });
  });

  // The live job page's buttons act without leaving the page (the chart
  // keeps its history); the live stream shows the result.
  document.querySelectorAll("#job-actions form").forEach(function (f) {
    f.addEventListener("submit", function (e) {
      e.preventDefault();
      if (f.dataset.confirm && !window.confirm(f.dataset.confirm)) return;
      var out = document.getElementById("action-error"), btn = f.querySelector("button");
      btn.disabled = true; out.hidden = true;
      fetch(f.action, { method: "POST", credentials: "same-origin",
        headers: { "X-CSRF-Token": f.elements.csrf.value, "Accept": "application/json" } })
        .then(function (r) {
          btn.disabled = false;
          if (r.ok) return;
          return r.json().then(function (b) { out.textContent = b.message; out.hidden = false; });
        })
        .catch(function () { btn.disabled = false; out.textContent = "The request failed: check the connection."; out.hidden = false; });
    });
  });

  // Upload with a progress bar (XHR upload progress).
  var up = document.getElementById("upload");
  if (up) {
    up.addEventListener("submit", function (e) {
      e.preventDefault();
      var bar = document.getElementById("u-progress"), status = document.getElementById("u-status");
      var btn = up.querySelector("button[type=submit]");
      var xhr = new XMLHttpRequest();
      xhr.open("POST", up.action);
      xhr.setRequestHeader("X-CSRF-Token", csrf);
      xhr.setRequestHeader("Accept", "application/json");
      bar.hidden = false; bar.value = 0; btn.disabled = true;
      status.textContent = "Uploading…";
      xhr.upload.onprogress = function (ev) {
        if (ev.lengthComputable) {
          var p = Math.floor(ev.loaded * 100 / ev.total);
          bar.value = p; status.textContent = "Uploading… " + p + " %";
        }
      };
      xhr.onload = function () {
        btn.disabled = false;
        if (xhr.status < 300 && xhr.responseURL.indexOf("/packages/") >= 0) {
          status.textContent = "Uploaded; the server is computing the checksums…";
          window.location.assign(xhr.responseURL);
          return;
        }
        var msg = "Upload failed (" + xhr.status + ")";
        try { msg = JSON.parse(xhr.responseText).message || msg; } catch (err) { /* not JSON */ }
        status.textContent = msg; status.className = "error";
      };
      xhr.onerror = function () { btn.disabled = false; status.textContent = "Upload failed: the connection broke."; status.className = "error"; };
      xhr.send(new FormData(up));
    });
  }

  // The live job page: server-sent events.
  var live = document.getElementById("live");
  if (!live || !window.EventSource) return;
  var points = [];
  var $ = function (id) { return document.getElementById(id); };
  var text = function (id, v) { var el = $(id); if (el) el.textContent = v; };
  // The chart's height is the job's whole device count, so its lines read
  // as the share of the fleet that succeeded or failed.
  function draw(total) {
    var max = Math.max(total, 1);
    points.forEach(function (p) { max = Math.max(max, p.s, p.f); });
    if (points.length === 1) points.unshift({ t: points[0].t - 1000, s: points[0].s, f: points[0].f }); // a level line, not an invisible dot
    var t0 = points[0].t, span = Math.max(points[points.length - 1].t - t0, 1);
    function line(key) {
      return points.map(function (p) {
        return ((p.t - t0) * 300 / span).toFixed(1) + "," + (119 - p[key] * 115 / max).toFixed(1);
      }).join(" ");
    }
    $("line-succeeded").setAttribute("points", line("s"));
    $("line-failed").setAttribute("points", line("f"));
  }
  function row(cells) {
    var tr = document.createElement("tr");
    cells.forEach(function (c) {
      var td = document.createElement("td");
      if (c.href) { var a = document.createElement("a"); a.href = c.href; a.textContent = c.text; td.appendChild(a); }
      else { td.textContent = c.text; if (c.cls) td.className = c.cls; }
      if (cells.length === 1) td.colSpan = 4;
      tr.appendChild(td);
    });
    return tr;
  }
  var es = new EventSource(live.dataset.events);
  es.addEventListener("snapshot", function (ev) {
    var s = JSON.parse(ev.data);
    text("live-status", "live");
    var st = $("job-state"); st.textContent = s.state; st.className = "st st-" + s.state;
    var reason = $("job-reason"); reason.textContent = s.state_reason; reason.hidden = !s.state_reason;
    $("job-progress").value = s.percent;
    text("job-percent", s.percent + " %");
    text("job-finished", s.finished); text("job-total", s.total);
    var init = $("job-init"); if (init) init.hidden = !s.initializing;
    Object.keys(s.counts).forEach(function (k) { text("count-" + k, s.counts[k]); });
    text("leg-succeeded", s.succeeded); text("leg-failed", s.failed); text("failed-total", s.failed_total); text("failed-shown", s.failures.length);
    document.querySelectorAll("#job-actions form").forEach(function (f) {
      var ok = f.dataset.when.split(" ").indexOf(s.state) >= 0;
      if (f.dataset.needs) ok = ok && s.counts[f.dataset.needs] > 0;
      f.querySelector("button").hidden = !ok;
    });
    var body = $("failures").tBodies[0];
    body.textContent = "";
    if (!s.failures.length) body.appendChild(row([{ text: "No device has failed.", cls: "muted" }]));
    s.failures.forEach(function (f) {
      body.appendChild(row([{ text: f.device, href: "/devices/" + encodeURIComponent(f.product) + "/" + encodeURIComponent(f.device) },
        { text: f.reason, cls: "reason" }, { text: f.detail }, { text: f.at }]));
    });
    points.push({ t: s.at, s: s.succeeded, f: s.failed });
    if (points.length > 600) points.shift();
    draw(s.total);
  });
  es.addEventListener("end", function () { es.close(); text("live-status", "finished"); });
  es.addEventListener("signedout", function () { es.close(); text("live-status", "signed out: reload to sign in again"); });
  es.onerror = function () { text("live-status", "reconnecting…"); };
})();
