"use strict";
// The gopegasus web console: each page fetches its JSON from /console/api/* every few
// seconds and redraws itself; charts are SVG drawn here. Data is only ever inserted as
// text (textContent and attributes), never as HTML.
(() => {
  const REFRESH_MS = 3000;
  const SVG = "http://www.w3.org/2000/svg";
  const main = document.getElementById("main");
  const statusEl = document.getElementById("status");
  const params = new URLSearchParams(location.search);
  const path = location.pathname.replace(/\/+$/, "") || "/console";

  const pages = {
    "/console": { name: "cluster", api: () => "/console/api/cluster", render: renderCluster },
    "/console/tables": { name: "tables", api: () => "/console/api/tables", render: renderTables },
    "/console/table": { name: "tables", api: () => "/console/api/table?name=" + encodeURIComponent(params.get("name") || ""), render: renderTable },
    "/console/operations": { name: "operations", api: () => "/console/api/operations", render: renderOperations },
  };
  const page = pages[path] || pages["/console"];
  for (const a of document.querySelectorAll("nav a")) {
    if (a.dataset.page === page.name) a.classList.add("here");
  }

  // h builds an element: h("td", {class: "n"}, "12"). Strings become text nodes.
  function h(tag, attrs, ...kids) {
    const svg = tag.startsWith("svg:");
    const el = svg ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      el.setAttribute(k, v === true ? "" : String(v));
    }
    for (const kid of kids.flat(Infinity)) {
      if (kid === undefined || kid === null || kid === false) continue;
      el.append(kid instanceof Node ? kid : String(kid));
    }
    return el;
  }

  // Formatting.
  const num = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
  function fmtQPS(x) {
    if (x === null || x === undefined) return "—";
    if (x === 0) return "0";
    return x < 10 ? x.toFixed(1) : num.format(x);
  }
  function fmtBytes(b) {
    if (b === null || b === undefined) return "—";
    const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let i = 0;
    while (b >= 1024 && i < units.length - 1) { b /= 1024; i++; }
    return (i === 0 ? String(b) : b.toFixed(b < 10 ? 2 : 1)) + " " + units[i];
  }
  // fmtLatency shows nanoseconds with three significant digits at most; 0 is "—" (no
  // request), or "0" on an axis.
  function fmtLatency(ns, axis) {
    if (!ns) return axis ? "0" : "—";
    const digits = (v) => v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0);
    if (ns < 1e3) return Math.round(ns) + " ns";
    if (ns < 1e6) return digits(ns / 1e3) + " µs";
    if (ns < 1e9) return digits(ns / 1e6) + " ms";
    return digits(ns / 1e9) + " s";
  }
  function fmtClock(ms) {
    return new Date(ms).toLocaleTimeString("en-GB", { hour12: false });
  }
  function fmtAgo(ms) {
    if (!ms) return "—";
    const s = Math.max(0, (Date.now() - ms) / 1000);
    if (s < 90) return s.toFixed(0) + " s ago";
    if (s < 5400) return (s / 60).toFixed(0) + " min ago";
    return (s / 3600).toFixed(1) + " h ago";
  }
  function fmtDate(ms) {
    if (!ms) return "—";
    const d = new Date(ms);
    const pad = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
  }

  const tag = (cls, text) => h("span", { class: "tag " + cls }, text ?? cls);
  const tile = (k, v, bad) => h("div", { class: "tile" }, h("div", { class: "k" }, k), h("div", { class: "v" + (bad ? " bad" : "") }, v));
  const addr = (a) => h("span", { class: "addr" }, a);

  // grid renders a table: cols are [title, cell(row), numeric?].
  function grid(cols, rows, empty, rowAttrs) {
    if (!rows.length) return h("p", { class: "muted" }, empty);
    return h("table", {},
      h("thead", {}, h("tr", {}, cols.map(([title, , n]) => h("th", { class: n ? "n" : null }, title)))),
      h("tbody", {}, rows.map((r) => h("tr", rowAttrs ? rowAttrs(r) : {}, cols.map(([, cell, n]) => h("td", { class: n ? "n" : null }, cell(r)))))));
  }

  // axisScale returns the top of a y axis at or above x (1, 2 or 5 times a power of ten)
  // and the step of its grid lines.
  function axisScale(x) {
    const p = Math.pow(10, Math.floor(Math.log10(x)));
    for (const [m, step] of [[1, 0.2], [2, 0.5], [5, 1], [10, 2]]) {
      if (x <= m * p * (1 + 1e-9)) return [m * p, step * p];
    }
    return [10 * p, 2 * p];
  }

  // chart draws series of the history points as lines over the window the charts keep;
  // floor is the least top of the y axis (what an idle chart shows).
  function chart(title, points, sampling, series, fmt, floor) {
    const box = h("div", { class: "chart", "data-chart": title });
    box.append(h("h3", {}, title));
    const last = points[points.length - 1];
    box.append(h("div", { class: "legend" }, series.map((s) =>
      h("span", { class: s.cls }, h("i"), s.label + (last ? " " + fmt(last[s.key]) : "")))));
    if (!points.length) {
      box.append(h("div", { class: "empty" }, `No samples yet: the first comes within ${Math.round(sampling.interval_ms / 1000)} s.`));
      return box;
    }
    const W = 600, H = 170, L = 58, R = 8, T = 8, B = 20;
    const span = sampling.interval_ms * Math.max(sampling.keep - 1, 1);
    const t1 = last.t, t0 = t1 - span;
    let top = floor;
    for (const p of points) for (const s of series) top = Math.max(top, p[s.key] || 0);
    const [ymax, step] = axisScale(top);
    const x = (t) => L + ((t - t0) / span) * (W - L - R);
    const y = (v) => T + (1 - v / ymax) * (H - T - B);
    const svg = h("svg:svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title });
    for (let i = 0; i * step <= ymax * (1 + 1e-9); i++) {
      const v = i * step;
      svg.append(h("svg:line", { class: "grid", x1: L, x2: W - R, y1: y(v), y2: y(v) }));
      svg.append(h("svg:text", { class: "axis", x: L - 6, y: y(v) + 3, "text-anchor": "end" }, fmt(v, true)));
    }
    svg.append(h("svg:text", { class: "axis", x: L, y: H - 5 }, fmtClock(t0)));
    svg.append(h("svg:text", { class: "axis", x: W - R, y: H - 5, "text-anchor": "end" }, fmtClock(t1)));
    for (const s of series) {
      const pts = points.filter((p) => p.t >= t0).map((p) => `${x(p.t).toFixed(1)},${y(p[s.key] || 0).toFixed(1)}`);
      svg.append(h("svg:polyline", { class: "line " + s.cls, points: pts.join(" "), "data-series": s.key }));
      svg.append(h("svg:circle", { class: s.cls, cx: x(last.t), cy: y(last[s.key] || 0), r: 2.5 }));
    }
    box.append(svg);
    return box;
  }

  function loadCharts(history, sampling) {
    return h("div", { class: "charts" },
      chart("Requests per second", history, sampling,
        [{ key: "read_qps", label: "reads", cls: "read" }, { key: "write_qps", label: "writes", cls: "write" }], fmtQPS, 1),
      chart("p99 latency (worst partition)", history, sampling,
        [{ key: "read_p99_ns", label: "reads", cls: "read" }, { key: "write_p99_ns", label: "writes", cls: "write" }], fmtLatency, 1e6));
  }

  // bar is a small SVG progress bar.
  function bar(done, total) {
    const f = total > 0 ? Math.min(1, done / total) : 0;
    return h("svg:svg", { class: "bar", viewBox: "0 0 120 8", width: 120, height: 8 },
      h("svg:rect", { x: 0, y: 0, width: 120, height: 8, rx: 4, fill: "#eaeef2" }),
      h("svg:rect", { x: 0, y: 0, width: (120 * f).toFixed(1), height: 8, rx: 4, fill: "#1a7f37" }));
  }

  function healthCell(hv, total) {
    const parts = [];
    if (hv.healthy === total) parts.push(tag("healthy", "all healthy"));
    else {
      parts.push(h("span", {}, `${hv.healthy}/${total} healthy `));
      if (hv.unhealthy) parts.push(tag("unhealthy", hv.unhealthy + " unhealthy"), " ");
      if (hv.unwritable) parts.push(tag("unwritable", hv.unwritable + " unwritable"), " ");
      if (hv.unreadable) parts.push(tag("unreadable", hv.unreadable + " unreadable"));
    }
    return parts;
  }

  function opsCell(ops) {
    if (!ops.length) return h("span", { class: "ops" }, "no requests");
    return h("span", { class: "ops" }, ops.map((o, i) => [i ? " · " : "", h("b", {}, o.op), ` ${fmtQPS(o.qps)}/s p99 ${fmtLatency(o.p99_ns)}`]));
  }

  function renderCluster(d) {
    const s = d.summary;
    document.title = `${d.cluster} · gopegasus console`;
    return [
      h("h1", {}, "Cluster ", d.cluster),
      h("p", { class: "sub" }, "Meta leader ", addr(d.leader), `, term ${d.term}`),
      h("div", { class: "tiles" },
        tile("Replica servers alive", `${s.alive_nodes} / ${s.alive_nodes + s.dead_nodes}`, s.dead_nodes > 0),
        tile("Tables", s.tables),
        tile("Healthy partitions", `${s.healthy_partitions} / ${s.partitions}`, s.healthy_partitions < s.partitions),
        tile("Reads per second", fmtQPS(s.read_qps)),
        tile("Writes per second", fmtQPS(s.write_qps)),
        tile("Disk used", fmtBytes(s.disk_bytes))),
      loadCharts(d.history, d.sampling),
      h("h2", {}, "Meta servers"),
      grid([
        ["Address", (m) => addr(m.addr)],
        ["Role", (m) => (m.leader ? tag("leader") : "follower")],
        ["Reachable", (m) => (m.reachable === null ? "—" : m.reachable ? tag("alive", "yes") : [tag("dead", "no"), " ", h("span", { class: "err" }, m.error || "")])],
      ], d.metas, "No meta server."),
      h("h2", {}, "Replica servers"),
      grid([
        ["Address", (n) => addr(n.addr)],
        ["Status", (n) => tag(n.alive ? "alive" : "dead")],
        ["Replicas", (n) => n.replicas, true],
        ["Primaries", (n) => n.primaries, true],
        ["Disk", (n) => fmtBytes(n.disk_bytes), true],
        ["Reads/s", (n) => (n.alive ? fmtQPS(n.read_qps) : "—"), true],
        ["Writes/s", (n) => (n.alive ? fmtQPS(n.write_qps) : "—"), true],
        ["Last report", (n) => [fmtAgo(n.last_sync_ms), n.error ? h("div", { class: "err" }, n.error) : null]],
      ], d.nodes, "No replica server has reported yet.", (n) => ({ "data-node": n.addr, "data-status": n.alive ? "alive" : "dead" })),
    ];
  }

  function tableLink(name) {
    return h("a", { href: "/console/table?name=" + encodeURIComponent(name) }, name);
  }

  function renderTables(d) {
    document.title = "Tables · gopegasus console";
    return [
      h("h1", {}, "Tables"),
      h("p", { class: "sub" }, `${d.tables.length} available; rates and latencies over the replica servers' last window`),
      grid([
        ["Name", (t) => tableLink(t.name)],
        ["ID", (t) => t.app_id, true],
        ["Partitions", (t) => t.partitions, true],
        ["Replicas", (t) => t.replica_count, true],
        ["Health", (t) => healthCell(t.health, t.partitions)],
        ["Reads/s", (t) => fmtQPS(t.read_qps), true],
        ["Writes/s", (t) => fmtQPS(t.write_qps), true],
        ["Requests by operation", (t) => opsCell(t.ops)],
        ["Size", (t) => fmtBytes(t.size_bytes), true],
        ["On disk", (t) => fmtBytes(t.disk_bytes), true],
      ], d.tables, "No table.", (t) => ({ "data-table": t.name })),
    ];
  }

  function renderTable(d) {
    const t = d.table;
    document.title = `${t.name} · gopegasus console`;
    return [
      h("h1", {}, "Table ", t.name),
      h("p", { class: "sub" }, `app id ${t.app_id} · ${t.partitions} partitions · ${t.replica_count} replicas each · created ${fmtDate(t.created_ms)}`),
      h("div", { class: "tiles" },
        tile("Healthy partitions", `${t.health.healthy} / ${t.partitions}`, t.health.healthy < t.partitions),
        tile("Reads per second", fmtQPS(t.read_qps)),
        tile("Writes per second", fmtQPS(t.write_qps)),
        tile("Size (one copy)", fmtBytes(t.size_bytes)),
        tile("On disk (all replicas)", fmtBytes(t.disk_bytes))),
      loadCharts(d.history, d.sampling),
      h("h2", {}, "Requests by operation"),
      grid([
        ["Operation", (o) => o.op],
        ["Requests/s", (o) => fmtQPS(o.qps), true],
        ["p99 (worst partition)", (o) => fmtLatency(o.p99_ns), true],
      ], t.ops, "No request in the last window."),
      d.operations.length ? [h("h2", {}, "In progress"), operationsGrid(d.operations)] : null,
      h("h2", {}, "Partitions"),
      grid([
        ["#", (p) => p.index, true],
        ["Primary", (p) => (p.primary ? addr(p.primary) : h("span", { class: "err" }, "none"))],
        ["Secondaries", (p) => [p.secondaries.map((s, i) => [i ? ", " : "", addr(s)]),
          p.dropped.length ? h("div", { class: "err" }, "dead: " + p.dropped.join(", ")) : null]],
        ["Ballot", (p) => p.ballot, true],
        ["Health", (p) => tag(p.health)],
        ["Size", (p) => fmtBytes(p.size_bytes), true],
        ["Reads/s", (p) => fmtQPS(p.read_qps), true],
        ["Writes/s", (p) => fmtQPS(p.write_qps), true],
      ], d.partitions, "No partition.", (p) => ({ "data-pidx": p.index })),
    ];
  }

  const kindNames = {
    replica_rebuild: "Replica rebuild",
    manual_compaction: "Manual compaction",
  };

  function operationsGrid(ops) {
    return grid([
      ["Kind", (o) => kindNames[o.kind] || o.kind],
      ["Table", (o) => tableLink(o.table)],
      ["Partition", (o) => (o.partition < 0 ? "all" : o.partition), true],
      ["What", (o) => o.detail],
      ["Progress", (o) => (o.total > 0 ? [bar(o.done, o.total), `${num.format(o.done)} / ${num.format(o.total)} ${o.unit || ""}`] : "—")],
    ], ops, "No long operation in progress.", (o) => ({ "data-kind": o.kind }));
  }

  function renderOperations(d) {
    document.title = "Operations · gopegasus console";
    return [
      h("h1", {}, "Long operations"),
      h("p", { class: "sub" }, "Replicas being rebuilt on a live server after theirs was lost, and manual compactions, while they run."),
      operationsGrid(d.operations),
    ];
  }

  // The refresh loop: one request at a time, every REFRESH_MS while the page is visible.
  let timer = 0;
  let running = false;
  async function refresh() {
    clearTimeout(timer);
    if (running) return;
    running = true;
    try {
      const res = await fetch(page.api(), { redirect: "manual", cache: "no-store", headers: { Accept: "application/json" } });
      if (res.type === "opaqueredirect") {
        // Another meta leads now: the page's own address redirects there.
        location.reload();
        return;
      }
      if (!res.ok) {
        let msg = (await res.text()).trim();
        try { msg = JSON.parse(msg).error || msg; } catch (e) { /* a plain text answer */ }
        throw new Error(msg || "status " + res.status);
      }
      const data = await res.json();
      const clusterName = data.cluster;
      if (clusterName) document.getElementById("cluster-name").textContent = clusterName;
      const scrollY = window.scrollY;
      main.replaceChildren(...[page.render(data)].flat(Infinity).filter((n) => n));
      window.scrollTo(0, scrollY);
      const last = data.sampling && data.sampling.last_ms;
      statusEl.className = "status";
      statusEl.textContent = `updated ${fmtClock(Date.now())}` + (last ? ` · metrics sampled ${fmtClock(last)}, every ${Math.round(data.sampling.interval_ms / 1000)} s` : " · no metrics sampled yet");
      statusEl.dataset.updated = String(Date.now());
    } catch (e) {
      statusEl.className = "status error";
      statusEl.textContent = "cannot update: " + e.message + "; retrying";
    } finally {
      running = false;
      if (!document.hidden) timer = setTimeout(refresh, REFRESH_MS);
    }
  }
  document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh(); });
  refresh();
})();
