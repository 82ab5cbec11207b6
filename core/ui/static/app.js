/* epochline viewer: a plain script, no build step (see docs/ui.md).
 *
 * Pages are built from JSON with DOM calls; every stored value enters the page as a text node or
 * an attribute value (never as markup), so a run named "<script>alert(1)<\/script>" shows as text.
 * The same script runs live against the server (fetch) and inside `epochline report` files,
 * where the config block's "data" holds the answers to the same URLs and links are #fragments.
 */
(function () {
  "use strict";

  const CFG = JSON.parse(document.getElementById("epochline-config").textContent);
  const REPORT = !!CFG.report;
  const POLL_MS = CFG.poll_ms || 1500;
  const COLORS = ["#2f6fde", "#e8590c", "#2b8a3e", "#c2255c", "#7048e8", "#0c8599", "#e67700",
                  "#5c940d", "#862e9c", "#495057"];
  const STATUSES = ["running", "completed", "failed", "interrupted", "crashed"];
  let timers = [];
  let charts = [];
  let generation = 0;

  // -- DOM -------------------------------------------------------------------------------------
  function h(tag, attrs) {
    const el = document.createElement(tag);
    if (attrs) {
      for (const k of Object.keys(attrs)) {
        const v = attrs[k];
        if (v === null || v === undefined || v === false) continue;
        if (k === "class") el.className = v;
        else if (k.slice(0, 2) === "on") el.addEventListener(k.slice(2), v);
        else if (k === "value") el.value = v;
        else if (k === "checked") el.checked = !!v;
        else el.setAttribute(k, v === true ? "" : String(v));
      }
    }
    for (let i = 2; i < arguments.length; i++) add(el, arguments[i]);
    return el;
  }
  function add(el, kid) {
    if (kid === null || kid === undefined || kid === false) return;
    if (Array.isArray(kid)) { kid.forEach((k) => add(el, k)); return; }
    el.appendChild(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }

  // -- formatting ------------------------------------------------------------------------------
  function fmtNum(v) {
    if (v === null || v === undefined) return "";
    if (typeof v === "number") {
      if (Number.isInteger(v)) return String(v);
      const a = Math.abs(v);
      return (a !== 0 && (a < 1e-3 || a >= 1e6)) ? v.toExponential(3) : String(+v.toPrecision(5));
    }
    if (typeof v === "object") return JSON.stringify(v);
    return String(v);
  }
  function fmtTime(t) {
    if (!t) return "";
    const d = new Date(t * 1000);
    const p = (n) => String(n).padStart(2, "0");
    return d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate()) + " " +
      p(d.getHours()) + ":" + p(d.getMinutes()) + ":" + p(d.getSeconds());
  }
  function fmtDur(s) {
    if (s === null || s === undefined) return "";
    s = Math.round(s);
    const hh = Math.floor(s / 3600), mm = Math.floor((s % 3600) / 60), ss = s % 60;
    return hh ? hh + "h" + String(mm).padStart(2, "0") + "m" : mm ? mm + "m" + String(ss).padStart(2, "0") + "s" : ss + "s";
  }
  function fmtSize(n) {
    if (n < 1024) return n + " B";
    const u = ["KB", "MB", "GB", "TB"];
    let i = -1;
    do { n /= 1024; i++; } while (n >= 1024 && i < u.length - 1);
    return n.toFixed(1) + " " + u[i];
  }
  function badge(status, reason) {
    return h("span", {class: "badge " + status, title: reason ? status + ": " + reason : status,
                      "data-status": status}, status);
  }
  function tags(list) { return (list || []).map((t) => h("span", {class: "tag"}, t)); }

  // -- routing and data ------------------------------------------------------------------------
  function route() {
    if (REPORT) {
      const r = location.hash.slice(1) || CFG.start || "/";
      return new URL(r, "http://report.invalid");
    }
    return new URL(location.href);
  }
  function link(path) { return REPORT ? "#" + path : path; }
  function go(path, replace) {
    if (REPORT) {
      if (replace) history.replaceState(null, "", "#" + path); else location.hash = path;
      if (replace) render();
      return;
    }
    if (replace) history.replaceState(null, "", path); else history.pushState(null, "", path);
    render();
  }
  function nav(path, text, attrs) {
    return h("a", Object.assign({href: link(path), "data-nav": path}, attrs || {}), text);
  }
  function runPath(id) { return "/runs/" + encodeURIComponent(id); }
  document.addEventListener("click", (e) => {
    const a = e.target.closest && e.target.closest("a[data-nav]");
    if (!a || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0 || REPORT) return;
    e.preventDefault();
    go(a.getAttribute("data-nav"));
  });
  window.addEventListener("popstate", () => render());
  window.addEventListener("hashchange", () => render());

  async function api(path) {
    if (REPORT) {
      if (Object.prototype.hasOwnProperty.call(CFG.data, path)) return CFG.data[path];
      const e = new Error("this report does not include " + path);
      e.status = 404;
      throw e;
    }
    const r = await fetch(path, {credentials: "same-origin", headers: {accept: "application/json"}});
    let body = {};
    try { body = await r.json(); } catch (err) { body = {}; }
    if (!r.ok) {
      const e = new Error(body.error || (r.status + " " + r.statusText));
      e.status = r.status;
      throw e;
    }
    return body;
  }
  function mediaSrc(runId, hash) {
    const path = "/api/runs/" + encodeURIComponent(runId) + "/media/" + hash;
    return REPORT ? (CFG.data[path] || "") : path;
  }
  function every(ms, fn) {
    const gen = generation;
    let busy = false;
    const id = setInterval(async () => {
      if (busy || gen !== generation) return;
      busy = true;
      try { await fn(); } catch (err) { console.warn("epochline: refresh failed", err); }
      busy = false;
    }, ms);
    timers.push(id);
  }

  // -- page frame ------------------------------------------------------------------------------
  function frame(active) {
    const app = clear(document.getElementById("app"));
    const top = h("header", {class: "top"},
      nav("/", "epochline", {class: "brand"}),
      nav("/", "Runs", {class: active === "runs" ? "active" : null}),
      REPORT && !CFG.has_groups ? null : nav("/groups", "Groups"),
      h("span", {class: "store", title: CFG.store || ""},
        REPORT ? "report · " + (CFG.created || "") : (CFG.store || "")));
    const main = h("main", {});
    app.appendChild(top);
    app.appendChild(main);
    return main;
  }
  function failure(main, err) {
    clear(main).appendChild(h("div", {class: "panel"},
      h("h1", {}, err.status === 404 ? "Not found" : "Could not load this page"),
      h("p", {}, err.message || String(err)), h("p", {}, nav("/", "All runs"))));
  }

  async function render() {
    generation++;
    timers.forEach(clearInterval);
    timers = [];
    charts.forEach((c) => c.destroy());
    charts = [];
    const url = route();
    const parts = url.pathname.split("/").filter(Boolean);
    let main;
    try {
      if (parts[0] === "runs" && parts.length === 2) {
        main = frame("run");
        await runPage(main, decodeURIComponent(parts[1]));
      } else if (parts[0] === "compare") {
        main = frame("compare");
        await comparePage(main, url.searchParams);
      } else if (parts[0] === "groups") {
        main = frame("groups");
        await groupsPage(main, url.searchParams);
      } else {
        main = frame("runs");
        await runsPage(main, url.searchParams);
      }
    } catch (err) {
      failure(main || frame(""), err);
    }
  }

  // -- runs table ------------------------------------------------------------------------------
  const selected = new Set();

  function pathTree(paths, active, onPick) {
    const root = {children: {}, count: 0};
    for (const p of Object.keys(paths)) {
      let node = root;
      root.count += paths[p];
      const segs = p.split("/");
      segs.forEach((seg, i) => {
        const full = segs.slice(0, i + 1).join("/");
        node = node.children[seg] = node.children[seg] || {children: {}, count: 0, full: full};
        node.count += paths[p];
      });
    }
    function list(node) {
      const names = Object.keys(node.children).sort();
      if (!names.length) return null;
      return h("ul", {}, names.map((n) => {
        const c = node.children[n];
        return h("li", {},
          h("span", {class: c.full === active ? "active" : null, "data-path": c.full,
                     onclick: () => onPick(c.full)}, n, h("span", {class: "count"}, c.count)),
          list(c));
      }));
    }
    return h("div", {class: "tree"},
      h("ul", {}, h("li", {}, h("span", {class: active ? null : "active", "data-path": "",
                                        onclick: () => onPick("")}, "all runs",
                                  h("span", {class: "count"}, root.count)), list(root))));
  }

  async function runsPage(main, params) {
    const state = {
      path: params.get("path") || "", tag: params.get("tag") || "", status: params.get("status") || "",
      q: params.get("q") || "", sort: params.get("sort") || "start_time",
      desc: params.get("desc") !== "0", page: Math.max(0, parseInt(params.get("page") || "0", 10) || 0),
    };
    const LIMIT = 50;
    function query(withPage) {
      const sp = new URLSearchParams();
      for (const k of ["path", "tag", "status", "q", "sort"]) if (state[k]) sp.set(k, state[k]);
      sp.set("desc", state.desc ? "1" : "0");
      if (withPage) { sp.set("offset", String(state.page * LIMIT)); sp.set("limit", String(LIMIT)); }
      else if (state.page) sp.set("page", String(state.page));
      return sp.toString();
    }
    const treeBox = h("div", {class: "panel"});
    const tableBox = h("div", {});
    const search = h("input", {type: "search", placeholder: "search name, path, id, tag…", value: state.q,
                               "aria-label": "search runs"});
    const statusSel = h("select", {"aria-label": "status"}, h("option", {value: ""}, "any status"),
      STATUSES.map((s) => h("option", {value: s}, s)));
    statusSel.value = state.status;
    const tagSel = h("select", {"aria-label": "tag"}, h("option", {value: ""}, "any tag"));
    const compareBtn = h("button", {class: "primary", disabled: true,
                                    onclick: () => go("/compare?ids=" + [...selected].map(encodeURIComponent).join(","))},
                         "Compare selected");
    const info = h("span", {class: "muted"});
    main.appendChild(h("div", {class: "layout"}, treeBox,
      h("div", {}, h("div", {class: "filters"}, search, statusSel, tagSel, compareBtn, info), tableBox)));

    let last = "";
    async function refresh(force) {
      const res = REPORT ? reportRuns(state, LIMIT) : await api("/api/runs?" + query(true));
      const text = JSON.stringify(res);
      if (!force && text === last) return;
      last = text;
      draw(res);
    }
    function changed() {
      if (!REPORT) history.replaceState(null, "", "/?" + query(false));
      last = "";
      refresh(true);
    }
    let typing = null;
    search.addEventListener("input", () => {
      clearTimeout(typing);
      typing = setTimeout(() => { state.q = search.value; state.page = 0; changed(); }, 150);
    });
    statusSel.addEventListener("change", () => { state.status = statusSel.value; state.page = 0; changed(); });
    tagSel.addEventListener("change", () => { state.tag = tagSel.value; state.page = 0; changed(); });

    function draw(res) {
      clear(treeBox).appendChild(pathTree(res.paths, state.path, (p) => { state.path = p; state.page = 0; changed(); }));
      const tagNames = Object.keys(res.tags).sort();
      clear(tagSel).appendChild(h("option", {value: ""}, "any tag"));
      tagNames.forEach((t) => tagSel.appendChild(h("option", {value: t}, t + " (" + res.tags[t] + ")")));
      tagSel.value = state.tag;
      const cols = [["name", "Name"], ["status", "Status"], ["path", "Path"], ["start_time", "Started"],
                    ["duration", "Duration", "num"], ["best", "Best (primary)", "num"], ["tags", "Tags"], ["id", "Id"]];
      const head = h("tr", {}, h("th", {}, ""), cols.map(([key, label, cls]) =>
        h("th", {class: "sortable " + (cls || ""), "data-sort": key, onclick: () => {
          state.desc = state.sort === key ? !state.desc : key === "start_time" || key === "duration";
          state.sort = key; changed();
        }}, label + (state.sort === key ? (state.desc ? " ▾" : " ▴") : ""))));
      const body = h("tbody", {}, res.runs.map((r) => h("tr", {"data-run": r.id},
        h("td", {}, h("input", {type: "checkbox", checked: selected.has(r.id), "aria-label": "select " + r.name,
                                onchange: (e) => { if (e.target.checked) selected.add(r.id); else selected.delete(r.id); pick(); }})),
        h("td", {}, nav(runPath(r.id), r.name, {class: "run-link"})),
        h("td", {}, badge(r.status, r.reason)),
        h("td", {class: "mono"}, r.path),
        h("td", {class: "muted"}, fmtTime(r.start_time)),
        h("td", {class: "num"}, fmtDur(r.duration)),
        h("td", {class: "num", title: r.primary_metric ? "best " + r.primary_metric : ""},
          r.best === null || r.best === undefined ? "" : fmtNum(r.best)),
        h("td", {class: "tags"}, tags(r.tags)),
        h("td", {class: "mono muted", title: r.id}, r.id.length > 14 ? "…" + r.id.slice(-8) : r.id))));
      clear(tableBox).appendChild(h("div", {class: "table-wrap"},
        h("table", {id: "runs"}, h("thead", {}, head), body)));
      const pages = Math.max(1, Math.ceil(res.total / LIMIT));
      tableBox.appendChild(h("div", {class: "pager"},
        h("button", {disabled: state.page <= 0, onclick: () => { state.page--; changed(); }}, "‹ prev"),
        h("span", {class: "muted"}, "page " + (state.page + 1) + " of " + pages),
        h("button", {disabled: state.page >= pages - 1, onclick: () => { state.page++; changed(); }}, "next ›")));
      info.textContent = res.total + " of " + Object.values(res.statuses).reduce((a, b) => a + b, 0) + " runs";
      pick();
    }
    function pick() {
      compareBtn.disabled = selected.size < 2;
      compareBtn.textContent = "Compare selected" + (selected.size ? " (" + selected.size + ")" : "");
    }
    await refresh(true);
    if (!REPORT) every(POLL_MS, () => refresh(false));
  }

  function reportRuns(state, limit) {
    // the report's runs table: the same filters, done here over the few runs it holds
    let runs = CFG.data["/api/runs"].runs.slice();
    const all = runs;
    if (state.path) runs = runs.filter((r) => r.path === state.path || r.path.startsWith(state.path + "/"));
    if (state.tag) runs = runs.filter((r) => (r.tags || []).indexOf(state.tag) >= 0);
    if (state.status) runs = runs.filter((r) => r.status === state.status);
    if (state.q) {
      const q = state.q.toLowerCase();
      runs = runs.filter((r) => [r.name, r.path, r.id, (r.tags || []).join(" ")].join(" ").toLowerCase().indexOf(q) >= 0);
    }
    const key = (r) => { const v = r[state.sort]; return v === null || v === undefined ? "" : Array.isArray(v) ? v.join(",") : v; };
    runs.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0) * (state.desc ? -1 : 1));
    const count = (f) => { const o = {}; all.forEach((r) => [].concat(f(r)).forEach((k) => { o[k] = (o[k] || 0) + 1; })); return o; };
    return {total: runs.length, runs: runs.slice(state.page * limit, (state.page + 1) * limit),
            paths: count((r) => r.path), tags: count((r) => r.tags || []), statuses: count((r) => r.status)};
  }

  // -- charts ----------------------------------------------------------------------------------
  function xValues(s, x) {
    // (xs, ys) of one series for the x choice: epoch = the last value of each epoch
    if (x === "epoch") return s.epochs ? [s.epochs.epoch.slice(), s.epochs.value.slice()] : [[], []];
    const xs = [], ys = [];
    const src = x === "time" ? s.time : s.step;
    for (let i = 0; i < s.value.length; i++) {
      const xv = src[i];
      if (xs.length && xv <= xs[xs.length - 1]) {  // equal times: the later point wins
        if (xv === xs[xs.length - 1] && s.value[i] !== null) ys[ys.length - 1] = s.value[i];
        continue;
      }
      xs.push(xv);
      ys.push(s.value[i]);
    }
    return [xs, ys];
  }

  function lineChart(box, spec) {
    // spec: {lines: [{label, color, xs, ys, width?, dash?}], bands: [[upperIdx, lowerIdx, color]], x, logY}
    const width = Math.max(280, box.clientWidth - 16);
    const tables = spec.lines.map((l) => [l.xs, spec.logY ? l.ys.map((v) => (v !== null && v > 0 ? v : null)) : l.ys]);
    const data = tables.length === 1 ? tables[0] : uPlot.join(tables);
    const series = [{label: spec.x === "time" ? "time" : spec.x,
                     value: (u, v) => (v === null || v === undefined ? "--" : spec.x === "time" ? fmtDur(v) : fmtNum(v))}];
    spec.lines.forEach((l, i) => series.push({
      label: l.label, stroke: l.color || COLORS[i % COLORS.length], width: l.width || 1.5,
      fill: l.fill, dash: l.dash, spanGaps: true, points: {show: l.xs.length < 60 && !l.fill && (l.width || 1.5) >= 1},
      value: (u, v) => (v === null || v === undefined ? "--" : fmtNum(v)),
    }));
    const opts = {
      width: width, height: spec.height || 220, series: series,
      scales: {x: {time: false}, y: spec.logY ? {distr: 3} : {}},
      axes: [{values: (u, vals) => vals.map((v) => (spec.x === "time" ? fmtDur(v) : fmtNum(v)))},
             {values: (u, vals) => vals.map(fmtNum), size: 60}],
      legend: {live: true},
      cursor: {drag: {x: true, y: false}},
    };
    if (spec.bands) opts.bands = spec.bands.map((b) => ({series: [b[0], b[1]], fill: b[2]}));
    const u = new uPlot(opts, data, box);
    u.epochlineBox = box;
    charts.push(u);
    box.setAttribute("data-points", String(data[0].length));
    return u;
  }
  function updateChart(u, spec) {
    const tables = spec.lines.map((l) => [l.xs, spec.logY ? l.ys.map((v) => (v !== null && v > 0 ? v : null)) : l.ys]);
    const data = tables.length === 1 ? tables[0] : uPlot.join(tables);
    u.setData(data);
    u.epochlineBox.setAttribute("data-points", String(data[0].length));
  }
  window.addEventListener("resize", () => {
    charts.forEach((u) => u.setSize({width: Math.max(280, u.epochlineBox.clientWidth - 16), height: u.height}));
  });

  function chartCard(title, note, onFull) {
    const box = h("div", {class: "plot"});
    const card = h("div", {class: "chart", "data-metric": title},
      h("h3", {}, title, note ? h("span", {class: "note"}, note) : null,
        onFull ? h("button", {onclick: onFull, title: "load every point instead of the downsampled series"}, "full data") : null),
      box);
    return [card, box];
  }
  function axisControls(state, onChange) {
    const xSel = h("select", {"aria-label": "x axis", onchange: (e) => { state.x = e.target.value; onChange(); }},
      h("option", {value: "step"}, "step"), h("option", {value: "epoch"}, "epoch"), h("option", {value: "time"}, "wall time"));
    xSel.value = state.x;
    const logBox = h("input", {type: "checkbox", checked: state.logY, onchange: (e) => { state.logY = e.target.checked; onChange(); }});
    return h("div", {class: "toolbar"}, h("label", {}, "x axis ", xSel), h("label", {}, logBox, "log y"),
      h("span", {class: "muted"}, "drag to zoom, double-click to reset; hover for values"));
  }
  function chartPoints() { return Math.max(200, Math.min(4000, Math.round(window.innerWidth / 2))); }

  // -- one run ---------------------------------------------------------------------------------
  function kvTable(obj, filter) {
    const keys = Object.keys(obj || {}).filter((k) => !filter || (k + " " + fmtNum(obj[k])).toLowerCase().indexOf(filter) >= 0);
    if (!keys.length) return h("p", {class: "muted"}, filter ? "no match" : "none");
    return h("table", {class: "kv"}, h("tbody", {}, keys.map((k) => h("tr", {}, h("td", {}, k), h("td", {}, fmtNum(obj[k]))))));
  }
  function epochTable(epochs) {
    if (!epochs || !epochs.length) return h("p", {class: "muted"}, "no epoch records");
    const fields = [];
    epochs.forEach((e) => Object.keys(e.values).forEach((k) => { if (fields.indexOf(k) < 0) fields.push(k); }));
    const pct = (f) => epochs.some((e) => (e.percent || []).indexOf(f) >= 0);
    return h("div", {class: "table-wrap"}, h("table", {id: "epochs"},
      h("thead", {}, h("tr", {}, h("th", {class: "num"}, "epoch"), fields.map((f) => h("th", {class: "num"}, f + (pct(f) ? " (%)" : ""))))),
      h("tbody", {}, epochs.map((e) => h("tr", {}, h("td", {class: "num"}, e.epoch + (e.total_epochs ? " / " + e.total_epochs : "")),
        fields.map((f) => {
          const v = e.values[f];
          const isPct = (e.percent || []).indexOf(f) >= 0;
          return h("td", {class: "num"}, v === undefined ? "" : isPct && typeof v === "number" ? v.toFixed(2) + " %" : fmtNum(v));
        }))))));
  }

  function runHeader(run) {
    return h("div", {id: "run-header"},
      h("h1", {}, run.name, " ", badge(run.status, run.reason)),
      h("div", {class: "meta"},
        h("span", {}, "id ", h("b", {class: "mono"}, run.id)),
        h("span", {}, "path ", h("b", {}, nav("/?path=" + encodeURIComponent(run.path), run.path))),
        run.alias ? h("span", {}, "alias ", h("b", {}, run.alias)) : null,
        run.framework ? h("span", {}, "framework ", h("b", {}, run.framework)) : null,
        h("span", {}, "started ", h("b", {}, fmtTime(run.start_time))),
        h("span", {}, "duration ", h("b", {}, fmtDur(run.duration))),
        h("span", {}, "host ", h("b", {}, (run.host || "") + (run.pid ? " pid " + run.pid : ""))),
        run.lost ? h("span", {class: "reason"}, run.lost + " events lost while recording") : null),
      run.reason ? h("p", {class: "reason"}, run.status + ": " + run.reason) : null,
      run.tags && run.tags.length ? h("div", {}, tags(run.tags)) : null);
  }

  async function runPage(main, id) {
    const base = "/api/runs/" + encodeURIComponent(id);
    let run = await api(base);
    document.title = run.name + " · epochline";
    const state = {x: "step", logY: false, full: {}};
    const header = h("div", {});
    header.appendChild(runHeader(run));
    main.appendChild(header);
    const chartGrid = h("div", {class: "grid", id: "charts"});
    const epochBox = h("div", {}, epochTable(run.epochs));
    const summaryBox = h("div", {}, kvTable(run.summary));
    main.appendChild(h("h2", {}, "Metrics"));
    main.appendChild(axisControls(state, async () => {
      // live, the per-epoch values come only when asked for (they cost a query per metric)
      if (!REPORT && state.x === "epoch" && Object.keys(series).some((k) => !series[k].epochs)) {
        series = (await api(seriesUrl())).series;
        state.full = {};
      }
      drawCharts();
    }));
    main.appendChild(chartGrid);

    let series = {};
    const xArg = () => (state.x === "epoch" ? "&x=epoch" : "");
    const seriesUrl = () => REPORT ? base + "/series" : base + "/series?points=" + chartPoints() + xArg();
    const byKey = {};
    function specFor(key) {
      const s = series[key];
      const [xs, ys] = xValues(s, state.x);
      return {lines: [{label: key, xs: xs, ys: ys, color: COLORS[0], width: 1.6}], x: state.x, logY: state.logY};
    }
    function drawCharts() {
      charts.forEach((c) => c.destroy());
      charts = [];
      clear(chartGrid);
      const keys = Object.keys(series).filter((k) => series[k].value.some((v) => v !== null));
      if (!keys.length) chartGrid.appendChild(h("p", {class: "muted"}, "no numeric metrics yet"));
      keys.forEach((key) => {
        const s = series[key];
        const note = s.n + " points" + (s.downsampled ? ", " + s.step.length + " shown" : "") + (s.stage ? " · " + s.stage : "");
        const [card, box] = chartCard(key, note, s.downsampled && !REPORT ? async () => {
          const full = await api(base + "/series?points=0&keys=" + encodeURIComponent(key) + xArg());
          series[key] = full.series[key];
          state.full[key] = true;
          drawCharts();
        } : null);
        chartGrid.appendChild(card);
        byKey[key] = lineChart(box, specFor(key));
      });
    }
    series = (await api(seriesUrl())).series;
    drawCharts();
    main.appendChild(h("h2", {}, "Epochs"));
    main.appendChild(epochBox);

    const paramFilter = h("input", {type: "search", placeholder: "search params", "aria-label": "search params"});
    const paramBox = h("div", {id: "params"}, kvTable(run.params));
    paramFilter.addEventListener("input", () => clear(paramBox).appendChild(kvTable(run.params, paramFilter.value.toLowerCase())));
    main.appendChild(h("div", {class: "two"},
      h("div", {}, h("h2", {}, "Params"), paramFilter, paramBox,
        h("p", {class: "muted mono"}, "fingerprint " + run.fingerprint +
          (run.ignored_params && run.ignored_params.length ? " (ignoring " + run.ignored_params.join(", ") + ")" : ""))),
      h("div", {}, h("h2", {}, "Summary"), summaryBox)));

    if (run.images.length) main.appendChild(gallery(run));
    if (run.histogram_keys.length) main.appendChild(await histogramSection(run, base));
    main.appendChild(textSection(run));
    if (run.artifacts.length) main.appendChild(artifactSection(run));
    if (run.comments.length) {
      main.appendChild(h("h2", {}, "Comments"));
      main.appendChild(h("div", {class: "panel"}, run.comments.map((c) => h("p", {}, h("span", {class: "muted"}, fmtTime(c.wall_time) + " "), c.text))));
    }

    if (!REPORT && run.status === "running") {
      every(POLL_MS, async () => {
        const [fresh, fs] = await Promise.all([api(base), api(seriesUrl())]);
        const keysChanged = Object.keys(fs.series).join() !== Object.keys(series).join();
        for (const k of Object.keys(fs.series)) if (!state.full[k]) series[k] = fs.series[k];
        if (keysChanged) drawCharts();
        else Object.keys(byKey).forEach((k) => { if (series[k] && byKey[k]) updateChart(byKey[k], specFor(k)); });
        clear(header).appendChild(runHeader(fresh));
        clear(epochBox).appendChild(epochTable(fresh.epochs));
        clear(summaryBox).appendChild(kvTable(fresh.summary));
        run = fresh;
        if (fresh.status !== "running") render();  // final state: draw everything once more
      });
    }
  }

  function gallery(run) {
    const byKey = {};
    run.images.forEach((im) => { (byKey[im.key] = byKey[im.key] || []).push(im); });
    const wrap = h("div", {class: "gallery", id: "images"});
    Object.keys(byKey).sort().forEach((key) => {
      const list = byKey[key];
      const img = h("img", {alt: key});
      const cap = h("figcaption", {});
      const show = (i) => {
        const im = list[i];
        img.src = mediaSrc(run.id, im.hash);
        // small images (digits, MNIST) scaled up by a whole factor: pixelated, not blurred
        img.width = im.width ? Math.min(Math.max(im.width, 520), im.width * Math.max(1, Math.floor(400 / im.width))) : 200;
        cap.textContent = key + " · step " + (im.step === null ? "-" : im.step) + (im.caption ? " · " + im.caption : "") +
          " (" + (i + 1) + "/" + list.length + ")";
      };
      const slider = list.length > 1 ? h("input", {type: "range", min: 0, max: list.length - 1, value: list.length - 1,
                                                   "aria-label": key + " step", oninput: (e) => show(+e.target.value)}) : null;
      show(list.length - 1);
      wrap.appendChild(h("figure", {}, img, cap, slider));
    });
    return h("div", {}, h("h2", {}, "Images"), wrap);
  }

  async function histogramSection(run, base) {
    const wrap = h("div", {class: "grid", id: "histograms"});
    for (const key of run.histogram_keys) {
      const list = await api(base + "/histograms?key=" + encodeURIComponent(key));
      if (!list.length) continue;
      const [card, box] = chartCard(key, list.length + " steps", null);
      const cap = h("div", {class: "muted"});
      let u = null;
      const show = (i) => {
        const hg = list[i];
        const limits = hg.bucket_limits, counts = hg.bucket_counts;
        const spec = {lines: [{label: "count", xs: limits.slice(), ys: counts.slice(), color: COLORS[2], fill: "rgba(43,138,62,.25)"}],
                      x: "value", logY: false, height: 180};
        if (u) updateChart(u, spec); else u = lineChart(box, spec);
        cap.textContent = "step " + hg.step + " · n=" + hg.num + " · min " + fmtNum(hg.min) + " · max " + fmtNum(hg.max);
      };
      card.appendChild(cap);
      if (list.length > 1) card.appendChild(h("input", {type: "range", min: 0, max: list.length - 1, value: list.length - 1,
                                                        "aria-label": key + " step", oninput: (e) => show(+e.target.value)}));
      wrap.appendChild(card);
      setTimeout(() => show(list.length - 1), 0);
    }
    return h("div", {}, h("h2", {}, "Histograms"), wrap);
  }

  function textSection(run) {
    const levels = [...new Set(run.texts.map((t) => t.level || "").filter(Boolean))];
    const sel = h("select", {"aria-label": "level"}, h("option", {value: ""}, "all levels"), levels.map((l) => h("option", {value: l}, l)));
    const box = h("div", {class: "logs", id: "texts"});
    const draw = () => {
      clear(box);
      const shown = run.texts.filter((t) => !sel.value || t.level === sel.value);
      if (!shown.length) box.appendChild(h("div", {}, "(no text)"));
      shown.forEach((t) => box.appendChild(h("div", {class: "lvl-" + (t.level || "")},
        fmtTime(t.wall_time) + " " + (t.level ? t.level + " " : "") + (t.logger ? "[" + t.logger + "] " : "") + t.text)));
    };
    sel.addEventListener("change", draw);
    draw();
    return h("div", {}, h("h2", {}, "Text and logs ", h("span", {class: "muted"},
      run.texts_total > run.texts.length ? "(last " + run.texts.length + " of " + run.texts_total + ")" : "")),
      levels.length ? h("div", {class: "toolbar"}, sel) : null, box);
  }

  function artifactSection(run) {
    return h("div", {}, h("h2", {}, "Artifacts"), h("div", {class: "table-wrap"}, h("table", {id: "artifacts"},
      h("thead", {}, h("tr", {}, h("th", {}, "name"), h("th", {class: "num"}, "size"), h("th", {}, "sha256"), h("th", {}, ""))),
      h("tbody", {}, run.artifacts.map((a) => h("tr", {},
        h("td", {}, a.name), h("td", {class: "num"}, fmtSize(a.size)), h("td", {class: "mono muted"}, a.sha256.slice(0, 16)),
        h("td", {}, REPORT ? h("span", {class: "muted"}, "not in report")
                           : h("a", {href: mediaSrc(run.id, a.hash), download: a.name}, "download"))))))));
  }

  // -- compare ---------------------------------------------------------------------------------
  async function comparePage(main, params) {
    const ids = (params.get("ids") || "").split(",").filter(Boolean);
    if (ids.length < 1) throw Object.assign(new Error("choose runs in the table, then Compare selected"), {status: 400});
    const cmpUrl = "/api/compare?ids=" + ids.map(encodeURIComponent).join(",");
    const res = await api(cmpUrl);
    const cmp = res.compare;
    const runs = cmp.runs;
    document.title = "compare " + runs.length + " runs · epochline";
    main.appendChild(h("h1", {}, "Compare " + runs.length + " runs"));
    main.appendChild(h("div", {class: "table-wrap"}, h("table", {id: "compare-runs"},
      h("thead", {}, h("tr", {}, h("th", {}, "run"), h("th", {}, "status"), h("th", {}, "path"), h("th", {class: "num"}, "duration"))),
      h("tbody", {}, runs.map((r, i) => h("tr", {},
        h("td", {}, h("span", {class: "swatch", style: "background:" + COLORS[i % COLORS.length]}), nav(runPath(r.id), r.name)),
        h("td", {}, badge(r.status, r.reason)), h("td", {class: "mono"}, r.path), h("td", {class: "num"}, fmtDur(r.duration))))))));

    // best / final per metric
    const metrics = cmp.metrics || [];
    main.appendChild(h("h2", {}, "Best and final"));
    main.appendChild(h("div", {class: "table-wrap"}, h("table", {id: "best-final"},
      h("thead", {}, h("tr", {}, h("th", {}, "metric"), runs.map((r) => h("th", {class: "num", colspan: 2}, r.name)))),
      h("tbody", {}, h("tr", {}, h("th", {}, ""), runs.map(() => [h("th", {class: "num"}, "best"), h("th", {class: "num"}, "final")])),
        metrics.map((m) => h("tr", {}, h("td", {class: "mono"}, m), runs.map((r) => {
          const v = (r.metrics || {})[m] || {};
          return [h("td", {class: "num"}, fmtNum(v.best)), h("td", {class: "num"}, fmtNum(v.final))];
        })))))));

    // params: differing keys highlighted, the rest behind a toggle
    const differ = new Set((cmp.params || {}).differing || []);
    const keys = [...new Set(runs.flatMap((r) => Object.keys(r.params || {})))].sort();
    const onlyDiff = h("input", {type: "checkbox", checked: true});
    const pbox = h("div", {});
    const drawParams = () => {
      const shown = keys.filter((k) => !onlyDiff.checked || differ.has(k));
      clear(pbox).appendChild(h("div", {class: "table-wrap"}, h("table", {id: "params-diff"},
        h("thead", {}, h("tr", {}, h("th", {}, "param"), runs.map((r) => h("th", {}, r.name)))),
        h("tbody", {}, shown.length ? shown.map((k) => h("tr", {class: differ.has(k) ? "differs" : null, "data-param": k},
          h("td", {class: "mono"}, k), runs.map((r) => h("td", {}, fmtNum((r.params || {})[k])))))
          : h("tr", {}, h("td", {colspan: runs.length + 1, class: "muted"}, "no differing params"))))));
    };
    onlyDiff.addEventListener("change", drawParams);
    drawParams();
    main.appendChild(h("h2", {}, "Params ", h("label", {class: "muted"}, onlyDiff, " only the " + differ.size + " that differ")));
    main.appendChild(pbox);

    // overlaid curves
    const state = {x: "step", logY: false};
    const grid = h("div", {class: "grid", id: "charts"});
    main.appendChild(h("h2", {}, "Curves"));
    main.appendChild(axisControls(state, async () => {
      if (!REPORT && state.x === "epoch" && !res.epochs_included) {
        res.series = (await api(cmpUrl + "&x=epoch")).series;
        res.epochs_included = true;
      }
      draw();
    }));
    main.appendChild(grid);
    const allKeys = [...new Set(runs.flatMap((r) => Object.keys(res.series[r.id] || {})))].sort();
    function draw() {
      charts.forEach((c) => c.destroy());
      charts = [];
      clear(grid);
      allKeys.forEach((key) => {
        const lines = [];
        runs.forEach((r, i) => {
          const s = (res.series[r.id] || {})[key];
          if (!s || !s.value.some((v) => v !== null)) return;
          const [xs, ys] = xValues(s, state.x);
          lines.push({label: r.name, xs: xs, ys: ys, color: COLORS[i % COLORS.length]});
        });
        if (!lines.length) return;
        const [card, box] = chartCard(key, lines.length + " runs", null);
        grid.appendChild(card);
        lineChart(box, {lines: lines, x: state.x, logY: state.logY});
      });
    }
    draw();
  }

  // -- groups ----------------------------------------------------------------------------------
  async function groupsPage(main, params) {
    const sp = new URLSearchParams();
    for (const k of ["path", "tag", "by"]) if (params.get(k)) sp.set(k, params.get(k));
    const qs = sp.toString();
    const res = await api("/api/groups" + (qs ? "?" + qs : ""));
    const agg = res.aggregate;
    document.title = "groups · epochline";
    main.appendChild(h("h1", {}, "Groups"));
    const pathIn = h("input", {type: "search", placeholder: "path prefix", value: params.get("path") || "", "aria-label": "path"});
    const byIn = h("input", {type: "search", placeholder: "group by params (lr,model); empty: fingerprint", value: params.get("by") || "", "aria-label": "group by"});
    const apply = () => {
      const q = new URLSearchParams();
      if (pathIn.value) q.set("path", pathIn.value);
      if (byIn.value) q.set("by", byIn.value);
      go("/groups" + (q.toString() ? "?" + q.toString() : ""));
    };
    if (!REPORT) main.appendChild(h("div", {class: "filters"}, pathIn, byIn, h("button", {onclick: apply}, "Group")));
    const groups = agg.groups || [];
    if (!groups.length) { main.appendChild(h("p", {class: "muted"}, "no groups (no completed runs here)")); return; }
    const metrics = agg.metrics || [];
    main.appendChild(h("div", {class: "table-wrap"}, h("table", {id: "aggregate"},
      h("thead", {}, h("tr", {}, h("th", {}, "group"), h("th", {class: "num"}, "n"), metrics.map((m) => h("th", {class: "num"}, m + " best (mean ± std)")),
        h("th", {}, "left out"))),
      h("tbody", {}, groups.map((g, i) => h("tr", {},
        h("td", {class: "nowrap"}, h("span", {class: "swatch", style: "background:" + COLORS[i % COLORS.length]}), g.label || g.key),
        h("td", {class: "num"}, (g.runs || []).length),
        metrics.map((m) => {
          const st = ((g.metrics || {})[m] || {}).best || {};
          return h("td", {class: "num", title: st.ci ? "95% CI " + fmtNum(st.ci[0]) + " … " + fmtNum(st.ci[1]) + " (n=" + st.n + ")" : ""},
            st.mean === undefined || st.mean === null ? "" : fmtNum(st.mean) + " ± " + fmtNum(st.std));
        }),
        h("td", {class: "muted"}, (g.excluded || []).map((r) => h("span", {title: r.reason || ""}, nav(runPath(r.id), r.id.slice(-8)), " (" + r.status + ") ")))))))));

    const grid = h("div", {class: "grid", id: "charts"});
    main.appendChild(h("h2", {}, "Mean ± std across each group's runs"));
    // the band chart of one metric at a time: each reads every point of that metric of every
    // counted run (in the database), so the page does not pay for metrics nobody looks at
    const offered = REPORT ? metrics.filter((m) => Object.prototype.hasOwnProperty.call(CFG.data, bandsUrl(m))) : metrics;
    function bandsUrl(m) { return "/api/groups/bands?metric=" + encodeURIComponent(m) + (qs ? "&" + qs : ""); }
    if (!offered.length) return;
    const wanted = params.get("metric");
    let metric = offered.indexOf(wanted) >= 0 ? wanted : (offered.find((m) => /^val.*acc|acc.*val/.test(m)) || offered[0]);
    const pick = h("select", {"aria-label": "band metric"}, offered.map((m) => h("option", {value: m}, m)));
    pick.value = metric;
    main.appendChild(h("div", {class: "toolbar"}, h("label", {}, "metric ", pick),
      h("span", {class: "muted"}, "mean of each group's runs with a ±1 std band, per step")));
    main.appendChild(grid);
    grid.classList.add("wide");
    async function drawBands() {
      charts.forEach((c) => c.destroy());
      charts = [];
      clear(grid).appendChild(h("p", {class: "loading"}, "reading " + metric + " of every run…"));
      const res2 = await api(bandsUrl(metric));
      const lines = [], bandSpec = [];
      res2.groups.forEach((b, gi) => {
        if (!b.step.length) return;
        const color = COLORS[gi % COLORS.length];
        const base = lines.length + 1;
        lines.push({label: b.label + " (" + b.runs + " runs)", xs: b.step, ys: b.mean, color: color, width: 2});
        lines.push({label: "+std", xs: b.step, ys: b.upper, color: color + "66", width: 0.5});
        lines.push({label: "−std", xs: b.step, ys: b.lower, color: color + "66", width: 0.5});
        bandSpec.push([base + 1, base + 2, color + "26"]);
      });
      clear(grid);
      if (!lines.length) { grid.appendChild(h("p", {class: "muted"}, "no values of " + metric + " in these groups")); return; }
      const [card, box] = chartCard(metric, "mean ± std per step", null);
      grid.appendChild(card);
      lineChart(box, {lines: lines, bands: bandSpec, x: "step", logY: false, height: 360});
    }
    pick.addEventListener("change", () => { metric = pick.value; drawBands(); });
    await drawBands();
  }

  render();
})();
