/*! Vantage browser agent (beacon.js) — no dependencies. Docs: docs/beacon.md
 * Reports JS errors, unhandled rejections, fetch/XHR 4xx/5xx (method, URL path template,
 * status), ReportingObserver reports and navigation timing to the Vantage collector, in batches
 * of at most 60 KiB sent with navigator.sendBeacon (text/plain: no CORS preflight).
 * Configure with data attributes on the script tag:
 *   <script src="https://collector.example.com/beacon.js" async
 *           data-endpoint="https://collector.example.com/beacon" data-sample-rate="0.5"></script>
 * or with window.VantageBeacon = {endpoint: "…", sampleRate: 0.5} before it loads.
 * data-observe-reports="true" (observeReports: true) also forwards ReportingObserver reports: for
 * sites without Reporting-Endpoints (otherwise every report would arrive twice). */
(function () {
  "use strict";
  var w = window, d = document, nav = navigator;
  if (w.__vantageBeacon) return;
  var script = d.currentScript || {};
  var ds = script.dataset || {};
  var cfg = w.VantageBeacon || {};
  var endpoint = cfg.endpoint || ds.endpoint ||
      (script.src ? script.src.replace(/\/beacon\.js(\?.*)?$/, "/beacon") : "/beacon");
  var sampleRate = Number(cfg.sampleRate != null ? cfg.sampleRate :
                          (ds.sampleRate != null ? ds.sampleRate : 1));
  if (!(sampleRate > 0)) return;
  if (sampleRate < 1 && Math.random() >= sampleRate) return;  // one decision per page view
  var MAX_BATCH_BYTES = 60 * 1024, MAX_FIELD = 2048, FLUSH_MS = 5000;
  var queue = [], queuedBytes = 0, timer = 0;
  w.__vantageBeacon = {flush: flush};

  function now() { return Date.now(); }
  function page() { return String(location.href).split(/[?#]/)[0]; }
  // Cuts long strings and removes query strings and fragments from URLs inside them (stack traces).
  function cut(s) {
    s = String(s == null ? "" : s).replace(/(\w+:\/\/[^\s?#"'()<>,]*)[?#][^\s"'()<>,]*?((?::\d+){0,2})(?=[\s"'()<>,]|$)/g, "$1$2");
    return s.length > MAX_FIELD ? s.slice(0, MAX_FIELD) : s;
  }
  // "/api/orders/12345/items/9f8e7d6c-…?x=1" -> "/api/orders/:id/items/:id"
  function template(url) {
    try {
      var u = new URL(url, location.href);
      var path = u.pathname.split("/").map(function (seg) {
        if (/^\d+$/.test(seg) || /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(seg) ||
            (seg.length >= 16 && /\d/.test(seg) && /^[\w-]+$/.test(seg))) return ":id";
        return seg;
      }).join("/");
      return u.origin + path;
    } catch (e) { return ""; }
  }
  function isCollector(url) {
    try { return new URL(url, location.href).href.indexOf(endpoint.split("?")[0]) === 0; } catch (e) { return false; }
  }

  function push(ev) {
    try {
      ev.ts = now();
      ev.page = page();
      var text = JSON.stringify(ev);
      if (text.length > MAX_BATCH_BYTES - 64) return;  // one event never exceeds a batch
      if (queuedBytes + text.length + 1 > MAX_BATCH_BYTES - 64) flush();
      queue.push(text);
      queuedBytes += text.length + 1;
      if (!timer) timer = setTimeout(flush, FLUSH_MS);
    } catch (e) { /* never break the page */ }
  }

  function flush() {
    if (timer) { clearTimeout(timer); timer = 0; }
    if (!queue.length) return;
    var body = '{"sent":' + now() + ',"sample_rate":' + sampleRate + ',"events":[' + queue.join(",") + "]}";
    queue = []; queuedBytes = 0;
    try {
      if (nav.sendBeacon && nav.sendBeacon(endpoint, body)) return;
    } catch (e) { /* fall through */ }
    try {
      origFetch && origFetch.call(w, endpoint, {method: "POST", body: body, keepalive: true,
                                                 headers: {"Content-Type": "text/plain;charset=UTF-8"}});
    } catch (e) { /* dropped */ }
  }

  w.addEventListener("error", function (e) {
    if (e && e.target && e.target !== w) return;  // resource load errors: NEL and timing see them
    push({kind: "js-error", message: cut(e.message), filename: cut(e.filename), lineno: e.lineno,
          colno: e.colno, stack: cut(e.error && e.error.stack)});
  }, true);
  w.addEventListener("unhandledrejection", function (e) {
    var r = e && e.reason;
    push({kind: "unhandledrejection", reason: cut(r && r.stack ? r.stack : (r && r.message) || r)});
  });

  var origFetch = w.fetch;
  if (origFetch) {
    w.fetch = function (input, init) {
      var start = performance.now();
      var method = ((init && init.method) || (input && input.method) || "GET").toUpperCase();
      var url = typeof input === "string" ? input : (input && input.url) || String(input);
      var p = origFetch.apply(this, arguments);
      if (isCollector(url)) return p;
      p.then(function (res) {
        if (res.status >= 400) {
          push({kind: "fetch-http-error", method: method, url: template(url), status: res.status,
                duration: Math.round(performance.now() - start)});
        }
      }, function () {
        push({kind: "fetch-http-error", method: method, url: template(url), status: 0,
              duration: Math.round(performance.now() - start)});
      });
      return p;
    };
  }

  var XHR = w.XMLHttpRequest;
  if (XHR && XHR.prototype) {
    var open = XHR.prototype.open, send = XHR.prototype.send;
    XHR.prototype.open = function (method, url) {
      this.__vantage = {method: String(method || "GET").toUpperCase(), url: String(url)};
      return open.apply(this, arguments);
    };
    XHR.prototype.send = function () {
      var x = this, info = x.__vantage;
      if (info && !isCollector(info.url)) {
        var start = performance.now();
        x.addEventListener("loadend", function () {
          if (x.status >= 400 || x.status === 0) {
            push({kind: "xhr-http-error", method: info.method, url: template(info.url), status: x.status,
                  duration: Math.round(performance.now() - start)});
          }
        });
      }
      return send.apply(this, arguments);
    };
  }

  // Off by default: a site that sends Reporting-Endpoints gets the same reports from the browser.
  if (w.ReportingObserver && (cfg.observeReports || ds.observeReports === "true")) {
    try {
      new w.ReportingObserver(function (reports) {
        reports.forEach(function (r) {
          push({kind: "reporting-observer", report: r.toJSON ? r.toJSON() : {type: r.type, url: r.url, body: r.body}});
        });
      }, {buffered: true}).observe();
    } catch (e) { /* not supported */ }
  }

  function sendTiming() {
    try {
      var entry = performance.getEntriesByType("navigation")[0];
      if (entry) push({kind: "perf", nav: entry.toJSON()});
    } catch (e) { /* no timing */ }
  }
  if (d.readyState === "complete") setTimeout(sendTiming, 0);
  else w.addEventListener("load", function () { setTimeout(sendTiming, 0); });

  d.addEventListener("visibilitychange", function () { if (d.visibilityState === "hidden") flush(); });
  w.addEventListener("pagehide", flush);
})();
