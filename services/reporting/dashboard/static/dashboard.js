// The coverage dashboard in the browser: draws every chart from the table beside it (so a chart never shows
// a figure its table does not), and keeps the figures current by polling the page's live route.
// Needs the vendored d3, Observable Plot and topojson-client (loaded before this file); nothing from outside.
(function () {
  "use strict";

  const BRAND = "#0b5394";
  const OWN = "#d35400";
  const SERIES = ["#0b5394", "#d35400", "#7d3c98"];
  const POLL_MS = 1000;
  const TIMEOUT_MS = 4000;

  const root = document.getElementById("live");
  if (!root) return; // a 404 or "not ready" page: nothing to draw or poll
  const lang = document.documentElement.lang === "en" ? "en" : "id";
  const locale = lang === "id" ? "id-ID" : "en-US";
  const compact = new Intl.NumberFormat(locale, { notation: "compact", maximumFractionDigits: 1 });
  const percent = new Intl.NumberFormat(locale, { style: "percent", maximumFractionDigits: 4 });
  const axisFormats = {
    count: (v) => compact.format(v),
    rupiah: (v) => "Rp" + compact.format(v),
    percent: (v) => percent.format(v),
  };
  let geometry = null; // fetched once, on the first map

  function rowsOf(table, plot) {
    return Array.from(table.tBodies[0].rows).map((tr) => {
      const cells = Array.from(tr.cells).slice(1);
      const link = tr.querySelector("th a");
      return {
        label: tr.dataset.label,
        key: tr.dataset.key || "",
        own: tr.classList.contains("own"),
        href: link ? link.getAttribute("href") : null,
        values: plot.map((i) => (cells[i] && cells[i].dataset.value !== undefined ? Number(cells[i].dataset.value) : null)),
        texts: plot.map((i) => (cells[i] ? cells[i].textContent.trim() : "")),
      };
    });
  }

  function bars(rows, unit, width) {
    const longest = Math.max(...rows.map((r) => r.label.length));
    const data = rows.map((r) => ({ ...r, value: r.values[0], text: r.texts[0] }));
    return Plot.plot({
      width,
      height: Math.max(70, rows.length * 19 + 40),
      marginLeft: Math.min(240, 12 + longest * 6.4),
      marginRight: 90,
      x: { grid: true, nice: true, label: null, tickFormat: axisFormats[unit], insetRight: 10 },
      y: { domain: data.map((d) => d.label), label: null, tickSize: 0 },
      marks: [
        Plot.barX(data.filter((d) => d.value !== null), {
          x: "value",
          y: "label",
          fill: (d) => (d.own ? OWN : BRAND),
          href: (d) => d.href,
          title: (d) => `${d.label}: ${d.text}`,
        }),
        Plot.text(data, {
          x: (d) => d.value || 0,
          y: "label",
          text: "text",
          textAnchor: "start",
          dx: 4,
          fontWeight: (d) => (d.own ? "bold" : "normal"),
        }),
        Plot.ruleX([0]),
      ],
    });
  }

  // Grouped bars: one group per row, one bar per series (flows by period; a budget's allocation, reserved, spent).
  function flows(rows, series, width, unit) {
    const data = rows.flatMap((r) => series.map((name, i) => ({ period: r.label, series: name, value: r.values[i], text: r.texts[i] })));
    return Plot.plot({
      width,
      height: 260,
      marginBottom: 40,
      fx: { domain: rows.map((r) => r.label), label: null },
      x: { axis: null, domain: series },
      y: { grid: true, nice: true, label: null, tickFormat: axisFormats[unit] || axisFormats.count },
      color: { legend: true, domain: series, range: SERIES },
      marks: [
        Plot.barY(data.filter((d) => d.value !== null), { fx: "period", x: "series", y: "value", fill: "series", title: (d) => `${d.period}, ${d.series}: ${d.text}` }),
        Plot.text(data, { fx: "period", x: "series", y: (d) => d.value || 0, text: "text", dy: -6, fontSize: 10 }),
        Plot.ruleY([0]),
      ],
    });
  }

  async function map(rows, unit, series, width, element) {
    if (geometry === null) {
      geometry = fetch(element.dataset.geometry).then((response) => response.json());
    }
    const topo = await geometry;
    const features = topojson.feature(topo, topo.objects[Object.keys(topo.objects)[0]]).features;
    const codes = JSON.parse(element.dataset.geometryCodes);
    const code = (f) => codes[f.properties.PROVINSI] || f.properties.KODE_PROV;
    const byKey = new Map(rows.map((r) => [r.key, r]));
    const highest = Math.max(1e-6, ...rows.map((r) => r.values[0] || 0));
    return Plot.plot({
      width,
      height: Math.round(width * 0.36),
      projection: { type: "mercator", domain: { type: "FeatureCollection", features } },
      color: {
        type: "quantize", n: 5, scheme: "blues", domain: [0, highest], legend: true, label: series[0],
        tickFormat: axisFormats[unit], unknown: "#e5e8e8",
      },
      marks: [
        Plot.geo(features, {
          fill: (f) => (byKey.has(code(f)) ? byKey.get(code(f)).values[0] : null),
          stroke: "#fff",
          strokeWidth: 0.6,
          href: (f) => (byKey.has(code(f)) ? byKey.get(code(f)).href : null),
          title: (f) => (byKey.has(code(f)) ? `${byKey.get(code(f)).label}: ${byKey.get(code(f)).texts[0]}` : f.properties.PROVINSI),
        }),
      ],
    });
  }

  async function drawOne(element) {
    const table = document.getElementById(element.dataset.table);
    if (!table) return;
    const plot = element.dataset.plot.split(",").map(Number);
    const series = element.dataset.series.split("|");
    const unit = element.dataset.unit;
    const rows = rowsOf(table, plot);
    const width = Math.max(280, element.clientWidth || 600);
    const kind = element.dataset.chart;
    const chart =
      kind === "map" ? await map(rows, unit, series, width, element)
        : kind === "flows" ? flows(rows, series, width, unit)
        : bars(rows, unit, width);
    // The table after the chart carries the same links: keyboard users go there, not through every shape.
    chart.querySelectorAll("a").forEach((a) => a.setAttribute("tabindex", "-1"));
    element.replaceChildren(chart);
    element.dataset.width = String(width);
  }

  async function draw() {
    const charts = Array.from(root.querySelectorAll(".chart[data-chart]"));
    await Promise.all(charts.map((element) => drawOne(element).catch((error) => console.error(error))));
    root.dataset.drawn = String(Date.now());
  }

  // --- Live figures ----------------------------------------------------------------------------------------

  const asOf = document.getElementById("as-of");
  const stale = document.getElementById("stale");
  let version = root.dataset.version;
  let lastAnswered = root.dataset.when;

  function swap(html) {
    const open = new Map(Array.from(root.querySelectorAll("details[id]")).map((d) => [d.id, d.open]));
    const active = document.activeElement;
    const focus = active && root.contains(active) ? active.getAttribute("href") || active.id : null;
    root.innerHTML = html;
    root.querySelectorAll("details[id]").forEach((d) => {
      if (open.has(d.id)) d.open = open.get(d.id);
    });
    if (focus) {
      const again = root.querySelector(`[href="${CSS.escape(focus)}"]`) || document.getElementById(focus);
      if (again) again.focus({ preventScroll: true });
    }
  }

  async function poll() {
    try {
      const url = `${root.dataset.live}?lang=${lang}&v=${encodeURIComponent(version)}`;
      const response = await fetch(url, { cache: "no-store", signal: AbortSignal.timeout(TIMEOUT_MS) });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const answer = await response.json();
      if (answer.html !== undefined) {
        swap(answer.html);
        version = answer.version;
        await draw();
        root.dataset.updated = String(Date.now());
      }
      asOf.textContent = answer.as_of;
      lastAnswered = answer.when;
      stale.hidden = true;
    } catch (error) {
      // The last figures stay; the banner says since when they are not current.
      stale.textContent = stale.dataset.text.replace("{when}", lastAnswered);
      stale.hidden = false;
    } finally {
      window.setTimeout(poll, POLL_MS);
    }
  }

  // --- Printing and resizing -------------------------------------------------------------------------------

  let closed = [];
  window.addEventListener("beforeprint", () => {
    closed = Array.from(document.querySelectorAll("details:not([open])"));
    closed.forEach((d) => (d.open = true));
  });
  window.addEventListener("afterprint", () => closed.forEach((d) => (d.open = false)));
  let resizing = 0;
  window.addEventListener("resize", () => {
    window.clearTimeout(resizing);
    resizing = window.setTimeout(() => {
      const moved = Array.from(root.querySelectorAll(".chart[data-chart]")).some(
        (element) => Math.abs((element.clientWidth || 0) - Number(element.dataset.width || 0)) > 20,
      );
      if (moved) draw();
    }, 200);
  });

  draw().then(() => {
    performance.mark("dashboard-drawn");
    window.setTimeout(poll, POLL_MS);
  });
})();
