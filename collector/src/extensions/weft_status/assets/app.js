// Weft's status page: four views over the JSON under /api/. Plain JavaScript, no build.
//
// Safety rule of this file: every value from the server becomes text (a text node, or an
// attribute set with setAttribute), never markup: nothing here parses HTML, so a span named
// <img src=x onerror=alert(1)> shows as those characters. (The unit tests check the file
// uses none of the DOM's HTML-parsing calls.)
"use strict";

(function () {
  const view = document.getElementById("view");
  const live = document.getElementById("live");
  let timer = null;
  let generation = 0;

  // ---- DOM helpers ---------------------------------------------------------------------

  // el("div", {class: "x", "data-id": id}, child, "text", ...): children are nodes or text.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      node.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function link(href, text, attrs) {
    return el("a", Object.assign({ href }, attrs || {}), text);
  }

  // Replaces the view with `nodes` (nested arrays flattened, null and false left out).
  function replace(...nodes) {
    view.replaceChildren(...nodes.flat(Infinity).filter((n) => n !== null && n !== undefined && n !== false));
  }

  // ---- formatting ----------------------------------------------------------------------

  function num(n) {
    if (n === null || n === undefined) return "–";
    if (Math.abs(n) >= 1e6) return (n / 1e6).toFixed(1) + "M";
    if (Math.abs(n) >= 1e4) return (n / 1e3).toFixed(1) + "k";
    return Number.isInteger(n) ? String(n) : n.toFixed(1);
  }

  function bytes(n) {
    if (n === null || n === undefined) return "–";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) {
      n /= 1024;
      i++;
    }
    return (i === 0 ? String(n) : n.toFixed(1)) + " " + units[i];
  }

  function ms(x) {
    if (x === null || x === undefined) return "–";
    if (x < 1) return x.toFixed(2) + " ms";
    if (x < 1000) return x.toFixed(0) + " ms";
    if (x < 60000) return (x / 1000).toFixed(2) + " s";
    return (x / 60000).toFixed(1) + " min";
  }

  function seconds(x) {
    return x === null || x === undefined ? "–" : ms(x * 1000);
  }

  function time(iso) {
    const d = new Date(iso);
    return isNaN(d) ? iso : d.toLocaleTimeString();
  }

  // A counter {total, per_second} as "12.3/s (1,234)"; "–" when the component has none.
  function rate(c) {
    if (!c) return "–";
    const per = c.per_second === null || c.per_second === undefined ? "…" : num(c.per_second);
    return per + "/s (" + num(c.total) + ")";
  }

  // A value of an attribute or body: a string, or {text, cut_from_bytes} when cut.
  function value(v) {
    if (v && typeof v === "object") {
      return el("span", { class: "cut", title: "cut: " + v.cut_from_bytes + " bytes in all" },
        v.text, el("span", { class: "cut-note" }, " (" + bytes(v.cut_from_bytes) + ", cut)"));
    }
    return el("span", {}, v === null || v === undefined ? "" : String(v));
  }

  function attributes(list) {
    if (!list || list.length === 0) return null;
    return el("dl", { class: "attrs" },
      list.map((a) => [el("dt", {}, a.key), el("dd", {}, value(a.value))]));
  }

  function badge(verdict) {
    return el("span", { class: "badge " + verdict }, verdict === "kept" ? "KEPT" : "DROPPED");
  }

  function bar(fraction, cls) {
    const outer = el("div", { class: "bar " + (cls || "") });
    const inner = el("div", { class: "fill" });
    inner.style.width = Math.max(0, Math.min(100, fraction * 100)).toFixed(1) + "%";
    outer.appendChild(inner);
    return outer;
  }

  // ---- fetching ------------------------------------------------------------------------

  async function getJSON(path) {
    const response = await fetch(path, { headers: { Accept: "application/json" }, cache: "no-store" });
    let body = null;
    try {
      body = await response.json();
    } catch (e) {
      body = { error: "the answer was not JSON (" + response.status + ")" };
    }
    return { status: response.status, body };
  }

  function offline(error) {
    live.textContent = "offline";
    live.className = "live off";
    live.title = String(error);
  }

  function online() {
    live.textContent = "live";
    live.className = "live";
  }

  // Runs render(body) now and every `every` ms while this view stays open.
  function poll(path, render, every) {
    const mine = ++generation;
    const run = async () => {
      if (mine !== generation) return;
      try {
        const { status, body } = await getJSON(typeof path === "function" ? path() : path);
        if (mine !== generation) return;
        online();
        if (status >= 400) render(null, body.error || "error " + status);
        else render(body, null);
      } catch (e) {
        if (mine === generation) offline(e);
      }
      if (mine === generation && every) timer = setTimeout(run, every);
    };
    run();
  }

  // ---- pipelines -----------------------------------------------------------------------

  function component(c) {
    const card = el("div", {
      class: "component " + c.kind,
      "data-id": c.id,
      "data-kind": c.kind,
      "data-in": c.in ? c.in.total : "",
      "data-out": c.out ? c.out.total : "",
    });
    card.appendChild(el("div", { class: "component-title" }, el("span", { class: "kind" }, c.kind), " ", c.id));
    const rows = [["in", c.in], ["out", c.out], ["refused", c.refused], ["failed", c.failed]];
    const table = el("table", { class: "metrics" });
    for (const [name, counter] of rows) {
      if (!counter) continue;
      const bad = (name === "refused" || name === "failed") && counter.total > 0;
      table.appendChild(el("tr", { class: "m-" + name + (bad ? " bad" : "") },
        el("th", {}, name), el("td", { class: "value" }, rate(counter))));
    }
    if (table.childNodes.length === 0) {
      table.appendChild(el("tr", {}, el("td", { class: "muted" }, c.kind === "connector" ? "passes batches on" : "no counters")));
    }
    card.appendChild(table);
    if (c.queue && c.queue.capacity > 0) {
      const fill = c.queue.capacity > 0 ? c.queue.size / c.queue.capacity : 0;
      card.appendChild(el("div", { class: "queue" }, "queue " + num(c.queue.size) + " / " + num(c.queue.capacity)));
      card.appendChild(bar(fill, fill > 0.8 ? "hot" : ""));
    }
    return card;
  }

  function renderPipelines(data, error) {
    if (error) return replace(el("div", { class: "panel error" }, error));
    const sections = data.pipelines.map((p) =>
      el("section", { class: "pipeline", "data-id": p.id },
        el("h2", {}, p.id, el("span", { class: "muted" }, " · " + p.item.replace("_", " "))),
        el("div", { class: "flow" },
          el("div", { class: "stage" }, p.receivers.map(component)),
          el("div", { class: "arrow" }, "→"),
          p.processors.length ? [el("div", { class: "stage chain" }, p.processors.map(component)), el("div", { class: "arrow" }, "→")] : null,
          el("div", { class: "stage" }, p.exporters.map(component)))));
    replace(
      el("h1", { id: "pipelines" }, "Pipelines"),
      el("p", { class: "muted" },
        "Items per second over the last " + (data.rate_seconds ? data.rate_seconds + " s" : "seconds") +
        ", totals since start. Extensions: " + (data.extensions.join(", ") || "none") + "."),
      sections.length ? sections : el("p", { class: "panel" }, "No pipelines."));
  }

  // ---- window --------------------------------------------------------------------------

  function stat(label, main, sub) {
    return el("div", { class: "stat" }, el("div", { class: "stat-label" }, label),
      el("div", { class: "stat-value" }, main), sub ? el("div", { class: "stat-sub" }, sub) : null);
  }

  function histogram(h) {
    if (!h.buckets || h.buckets.length === 0 || !h.count) return el("p", { class: "muted" }, "No decisions yet.");
    let previous = 0;
    const rows = [];
    for (const b of h.buckets) {
      const n = b.count - previous;
      previous = b.count;
      rows.push({ le: b.le, n });
    }
    // Only the range that has decisions, with a bucket of margin either side.
    const first = Math.max(0, rows.findIndex((r) => r.n > 0) - 1);
    let last = rows.length - 1;
    while (last > first && rows[last].n === 0) last--;
    const shown = rows.slice(first, Math.min(rows.length, last + 2));
    const max = Math.max(...shown.map((r) => r.n), 1);
    return el("table", { class: "histogram" }, shown.map((r) =>
      el("tr", {}, el("th", {}, r.le === "+Inf" ? "more" : "≤ " + seconds(Number(r.le))),
        el("td", { class: "histo-bar" }, bar(r.n / max)), el("td", { class: "value" }, num(r.n)))));
  }

  function counterRows(map) {
    return el("table", { class: "metrics" }, Object.entries(map).filter(([, c]) => c && c.total > 0)
      .map(([k, c]) => el("tr", {}, el("th", {}, k.replaceAll("_", " ")), el("td", { class: "value" }, rate(c)))));
  }

  function renderWindow(data, error) {
    if (error) return replace(el("div", { class: "panel error" }, error));
    if (data.windows.length === 0) {
      return replace(el("h1", { id: "window" }, "Window"),
        el("p", { class: "panel" }, "No tail_sampling processor runs in this configuration."));
    }
    const cards = data.windows.map((w) => {
      const early = ["num_traces", "max_bytes", "trace_size"].map((r) => w.decisions.by_reason[r]).filter(Boolean)
        .reduce((a, c) => a + c.total, 0);
      const hits = Object.values(w.decision_cache.hits).filter(Boolean);
      const hitRate = hits.reduce((a, c) => a + (c.per_second || 0), 0);
      const hitTotal = hits.reduce((a, c) => a + c.total, 0);
      return el("section", { class: "window", "data-id": w.id },
        el("h2", {}, w.id),
        el("div", { class: "stats" },
          stat("traces held", num(w.traces) + " / " + num(w.limits.num_traces), bar(w.traces / w.limits.num_traces)),
          stat("bytes held", bytes(w.bytes) + (w.limits.max_bytes ? " / " + bytes(w.limits.max_bytes) : ""),
            w.limits.max_bytes ? bar(w.bytes / w.limits.max_bytes) : "no byte bound"),
          stat("oldest trace", w.oldest_age_seconds === null ? "–" : seconds(w.oldest_age_seconds),
            "decision_wait " + seconds(w.limits.decision_wait_seconds)),
          stat("kept", rate(w.decisions.kept)),
          stat("dropped", rate(w.decisions.dropped)),
          stat("decided early", num(early), "window full (num_traces, max_bytes) or trace too big"),
          stat("decision cache", num(w.decision_cache.kept) + " kept · " + num(w.decision_cache.dropped) + " dropped",
            "hits " + num(hitRate) + "/s (" + num(hitTotal) + "): late spans and logs that followed a remembered decision"),
          w.spans_waiting_for_late_logs ? stat("spans waiting for late logs", num(w.spans_waiting_for_late_logs)) : null,
          w.durable ? stat("durable log", bytes(w.durable.wal_bytes) + " in " + num(w.durable.wal_segments) + " segments",
            "decisions written " + rate(w.durable.decisions_written)) : null,
          stat("decisions ring", num(w.ring.records) + " / " + num(w.ring.capacity),
            "detail " + bytes(w.ring.detail_bytes) + " / " + bytes(w.ring.detail_max_bytes))),
        el("div", { class: "columns" },
          el("div", {}, el("h3", {}, "Decision delay (first item → decision)"), histogram(w.decision_delay_seconds)),
          el("div", {}, el("h3", {}, "Decided because"), counterRows(w.decisions.by_reason),
            el("h3", {}, "Log records"), counterRows(w.log_records))));
    });
    replace(el("h1", { id: "window" }, "Window"), cards);
  }

  // ---- decisions -----------------------------------------------------------------------

  const filters = { verdict: "", policy: "", service: "", q: "" };

  function decisionsPath() {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(filters)) if (v) params.set(k, v);
    params.set("limit", "200");
    return "/api/decisions?" + params.toString();
  }

  function select(name, options, current, label) {
    const s = el("select", { id: "filter-" + name, name, "aria-label": label },
      el("option", { value: "" }, label + ": all"),
      options.map((o) => el("option", { value: o, selected: o === current }, o)));
    s.addEventListener("change", () => {
      filters[name] = s.value;
      navigate();
    });
    return s;
  }

  function renderDecisions(data, error) {
    const keepFocus = document.activeElement && document.activeElement.id === "filter-q";
    const qInput = el("input", { id: "filter-q", placeholder: "trace id or its start", value: filters.q,
      spellcheck: "false", autocomplete: "off", maxlength: "32" });
    qInput.addEventListener("input", () => {
      filters.q = qInput.value.trim();
      clearTimeout(timer);
      timer = setTimeout(navigate, 300);
    });
    const bar_ = el("div", { class: "filters" },
      select("verdict", ["kept", "dropped"], filters.verdict, "verdict"),
      select("policy", data ? data.policies : [], filters.policy, "decided by"),
      select("service", data ? data.services : [], filters.service, "root service"),
      qInput);
    if (error) {
      replace(el("h1", { id: "decisions" }, "Decisions"), bar_, el("div", { class: "panel error" }, error));
    } else {
      const rings = data.rings.map((r) => r.window + ": last " + num(r.ring.records) + " of at most " + num(r.ring.capacity)).join("; ");
      const rows = data.decisions.map((d) => {
        const tr = el("tr", { class: "decision " + d.verdict, "data-trace-id": d.trace_id },
          el("td", {}, time(d.decided_at)),
          el("td", {}, badge(d.verdict)),
          el("td", { class: "mono" }, link("#/trace/" + d.trace_id, d.trace_id, { class: "trace-link" })),
          el("td", {}, d.decided_by || (d.failure ? "undecodable" : "no policy")),
          el("td", {}, d.root_service || "–"),
          el("td", {}, d.root_operation || "–"),
          el("td", { class: "num" }, ms(d.duration_ms)),
          el("td", {}, d.error ? el("span", { class: "err" }, "error") : ""),
          el("td", { class: "num" }, num(d.span_count)),
          el("td", { class: "num" }, num(d.log_count)));
        tr.addEventListener("click", (e) => {
          if (e.target.tagName !== "A") location.hash = "#/trace/" + d.trace_id;
        });
        return tr;
      });
      replace(
        el("h1", { id: "decisions" }, "Decisions"),
        el("p", { class: "muted" }, "Recent decisions, kept and dropped (" + rings + "). " +
          num(data.matching) + " match" + (data.matching > data.decisions.length ? ", newest " + data.decisions.length + " shown" : "") + "."),
        bar_,
        el("table", { class: "decisions", id: "decision-list" },
          el("thead", {}, el("tr", {}, ["decided", "verdict", "trace id", "decided by", "root service",
            "operation", "duration", "", "spans", "logs"].map((h) => el("th", {}, h)))),
          el("tbody", {}, rows.length ? rows : el("tr", {}, el("td", { colspan: 10, class: "muted" }, "No decision matches.")))));
    }
    if (keepFocus) {
      qInput.focus();
      qInput.setSelectionRange(qInput.value.length, qInput.value.length);
    }
  }

  // ---- one trace -----------------------------------------------------------------------

  function policyTable(t) {
    return el("table", { class: "policies", id: "policies" },
      el("thead", {}, el("tr", {}, ["policy", "type", "said", "why"].map((h) => el("th", {}, h)))),
      el("tbody", {}, t.policies.map((p) =>
        el("tr", { class: "policy-row" + (p.name === t.decision.decided_by ? " decider" : ""), "data-name": p.name },
          el("td", {}, p.name), el("td", { class: "muted" }, p.type),
          el("td", {}, el("span", { class: "said " + (p.for_the_trace ? "for" : "against") },
            (p.for_the_trace ? "keep" : p.decision === "dropped" ? "drop" : "no") + (p.inverted ? " (inverted)" : ""))),
          el("td", { class: "reason" }, p.reason)))));
  }

  function logRow(l, scale) {
    return el("div", { class: "log sev-" + l.class + (l.late ? " late" : ""), "data-severity": l.severity },
      el("span", { class: "log-time" }, l.offset_ms === null ? "" : "+" + ms(l.offset_ms)),
      el("span", { class: "log-sev" }, l.severity || "–"),
      el("span", { class: "log-body" }, value(l.body)),
      l.late ? el("span", { class: "tag" }, "late") : null,
      attributes(l.attributes));
  }

  function waterfall(detail) {
    const total = detail.duration_ms || 1;
    const rows = [];
    for (const s of detail.spans) {
      const resource = detail.resources[s.resource] || {};
      const bar_ = el("div", { class: "span-bar" + (s.status.code === "error" ? " error" : "") });
      bar_.style.left = (100 * s.offset_ms / total).toFixed(2) + "%";
      bar_.style.width = Math.max(0.3, 100 * s.duration_ms / total).toFixed(2) + "%";
      const details = el("div", { class: "span-details", hidden: true },
        el("div", { class: "muted" }, s.kind + " span " + s.span_id + (s.parent_span_id ? " · parent " + s.parent_span_id : "") +
          " · starts +" + ms(s.offset_ms) + (s.status.message ? " · status: " + s.status.message : "")),
        attributes(s.attributes),
        resource.attributes && resource.attributes.length ? [el("div", { class: "muted" }, "resource"), attributes(resource.attributes)] : null);
      const label = el("div", { class: "span-label" },
        el("span", { class: "span-service" }, s.service || "?"), " ",
        el("span", { class: "span-name" }, s.name),
        s.status.code === "error" ? el("span", { class: "err" }, " error") : null);
      label.style.paddingLeft = (0.2 + s.depth * 1.1).toFixed(1) + "em";
      const row = el("div", { class: "span-row", "data-span-id": s.span_id },
        el("div", { class: "span-head" }, label,
          el("div", { class: "span-track" }, bar_), el("div", { class: "span-dur" }, ms(s.duration_ms))),
        details,
        s.events.length ? el("div", { class: "events" }, s.events.map((e) =>
          el("div", { class: "event" }, el("span", { class: "log-time" }, "+" + ms(e.offset_ms)),
            el("span", { class: "log-sev" }, "event"), el("span", { class: "log-body" }, e.name), attributes(e.attributes)))) : null,
        s.logs.length ? el("div", { class: "logs" }, s.logs.map((l) => logRow(l))) : null);
      row.querySelector(".span-head").addEventListener("click", () => { details.hidden = !details.hidden; });
      rows.push(row);
    }
    return el("div", { class: "waterfall", id: "waterfall" },
      el("div", { class: "scale" }, el("span", {}, "0"), el("span", {}, ms(total))), rows);
  }

  function renderTrace(t, error, id) {
    if (error) {
      return replace(el("h1", {}, "Trace"),
        el("div", { class: "panel not-found", id: "trace-error" }, error),
        el("p", {}, link("#/decisions", "See the recent decisions")));
    }
    const d = t.decision;
    const why = d.verdict === "kept"
      ? "kept by policy " + d.decided_by
      : d.failure ? d.failure : d.decided_by ? "dropped by policy " + d.decided_by : "dropped: no policy asked to keep it";
    const detail = t.detail;
    replace(
      el("h1", {}, "Trace ", el("span", { class: "mono", id: "trace-id" }, t.trace_id), " ", el("span", { id: "trace-verdict" }, badge(d.verdict))),
      el("p", { class: "lead", id: "decided-by", "data-policy": d.decided_by || "" }, why),
      el("div", { class: "stats" },
        stat("root", (d.root_service || "?") + " · " + (d.root_operation || "?")),
        stat("duration", ms(d.duration_ms), d.error ? el("span", { class: "err" }, "has an error span") : "no error span"),
        stat("held", num(d.span_count) + " spans · " + num(d.log_count) + " logs", bytes(d.bytes)),
        stat("decided", time(d.decided_at), "after " + ms(d.waited_ms) + " (" + d.decided_because.replaceAll("_", " ") + ")"),
        stat("window", d.window)),
      t.links.length ? el("p", { class: "links" }, t.links.map((l) => [link(l.url, l.text + " ↗", { rel: "noopener noreferrer", target: "_blank" }), " "])) : null,
      el("h2", {}, "Policies"),
      t.policies.length ? policyTable(t) : el("p", { class: "muted" }, "No policy was evaluated."),
      t.errors.length ? el("ul", { class: "errors" }, t.errors.map((e) => el("li", {}, e.policy + ": " + e.message + (e.failed ? " (failed: its decision did not count)" : " (ignored)")))) : null,
      el("h2", {}, "Spans and logs"),
      detail ? [
        waterfall(detail),
        detail.unattached_logs.length ? [el("h3", {}, "Logs of spans not in the trace"), el("div", { class: "logs" }, detail.unattached_logs.map((l) => logRow(l)))] : null,
        detail.problems.length ? el("ul", { class: "errors" }, detail.problems.map((p) => el("li", {}, p))) : null,
      ] : el("p", { class: "panel" }, t.detail_note || "No detail."));
  }

  // ---- routing -------------------------------------------------------------------------

  function navigate() {
    clearTimeout(timer);
    generation++;
    const hash = location.hash || "#/pipelines";
    const [path] = hash.slice(1).split("?");
    const parts = path.split("/").filter(Boolean);
    for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.getAttribute("href") === "#/" + parts[0]);
    switch (parts[0]) {
      case "window":
        document.title = "Window · Weft";
        return poll("/api/window", renderWindow, 2000);
      case "decisions":
        document.title = "Decisions · Weft";
        return poll(decisionsPath, renderDecisions, 3000);
      case "trace": {
        const id = decodeURIComponent(parts[1] || "");
        document.title = "Trace " + id + " · Weft";
        return poll("/api/traces/" + encodeURIComponent(id), (t, e) => renderTrace(t, e, id), 0);
      }
      default:
        document.title = "Pipelines · Weft";
        return poll("/api/pipelines", renderPipelines, 2000);
    }
  }

  document.getElementById("search").addEventListener("submit", (e) => {
    e.preventDefault();
    const id = document.getElementById("search-trace").value.trim();
    if (id) location.hash = "#/trace/" + encodeURIComponent(id);
  });
  window.addEventListener("hashchange", navigate);
  navigate();
})();
