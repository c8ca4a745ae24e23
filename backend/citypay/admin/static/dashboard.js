"use strict";
// The city's admin dashboard: signs in, loads the summary, then follows the server's event
// stream (a new summary after each block that changed the city, each new payment, the block).
(() => {
  const CITY = decodeURIComponent(location.pathname.split("/").filter(Boolean)[1] || "");
  const API = `/admin/api/cities/${encodeURIComponent(CITY)}`;
  const TOKEN_KEY = `citypay.admin.token.${CITY}`;
  const LANG_KEY = "citypay.admin.lang";
  const FEED_ROWS = 50;
  const FRESH_MS = 4000;

  let lang = localStorage.getItem(LANG_KEY) || (navigator.language.startsWith("ko") ? "ko" : "en");
  let summary = null;
  let city = null; // the city's names, public, for the sign-in screen
  let block = null;
  const feed = new Map(); // seq -> payment row
  const freshUntil = new Map(); // seq -> time its highlight ends
  const charts = {};
  let stream = null;

  const $ = (selector, root = document) => root.querySelector(selector);
  const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];
  const t = (key, ...args) => {
    const value = window.I18N[lang][key];
    return typeof value === "function" ? value(...args) : value ?? key;
  };

  // --- formatting -------------------------------------------------------------------------------

  const grouped = new Intl.NumberFormat("en-US");
  const pad = (n) => String(n).padStart(2, "0");
  const kst = (unix) => new Date((unix + 9 * 3600) * 1000).toISOString(); // "YYYY-MM-DDTHH:MM:SS"
  const short = (hex) => (hex ? `${hex.slice(0, 6)}…${hex.slice(-4)}` : "–");
  function duration(seconds) {
    const s = Math.round(seconds);
    if (s < 60) return t("seconds", s);
    if (s < 3600) return t("minutes", Math.floor(s / 60), s % 60);
    return t("hours", Math.floor(s / 3600), Math.floor((s % 3600) / 60));
  }
  const FORMAT = {
    won: (v) => `₩${grouped.format(v)}`,
    count: (v) => grouped.format(v),
    percent: (v) => `${v.toFixed(1)}%`,
    seconds: duration,
    time: (v) => kst(v).slice(5, 19).replace("T", " "),
    hour: (v) => `${pad(v)}:00`,
    label: (v) => v[lang],
    address: short,
    tx: short,
  };
  const format = (kind, value) =>
    value === null || value === undefined ? "–" : (FORMAT[kind] || String)(value);
  const NUMERIC = new Set(["won", "count", "percent", "seconds"]);
  // How each headline figure is shown (the overview table names their units).
  const KPI_KINDS = {
    capUsedPercent: "percent",
    participationPercent: "percent",
    medianSecondsToSettle: "seconds",
    maxSecondsToSettle: "seconds",
    reserveBalance: "won",
    reserveOwed: "won",
    reserveMargin: "won",
    reserveAsOf: "time",
    incentiveMode: "label",
  };
  const kpiKind = (key) =>
    KPI_KINDS[key] ||
    (/(Amount|Cap|^issued|^charged|^incentive|^cashback|circulation|outstanding)/.test(key) ? "won" : "count");

  // --- the API ----------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, error) {
      super(error.message);
      this.status = status;
      this.error = error;
    }
  }

  async function call(path, options = {}) {
    const token = sessionStorage.getItem(TOKEN_KEY);
    const headers = { ...(options.headers || {}) };
    if (token) headers.Authorization = `Bearer ${token}`;
    const response = await fetch(path, { ...options, headers });
    if (!response.ok) {
      let error;
      try {
        error = (await response.json()).error;
      } catch {
        error = { code: `http_${response.status}`, message: response.statusText };
      }
      throw new ApiError(response.status, error);
    }
    return response;
  }

  // --- signing in -------------------------------------------------------------------------------

  let signInError = "";

  function showSignIn(message = "") {
    signInError = message;
    stopStream();
    $("#dashboard").hidden = true;
    $("#status").hidden = true;
    $("#sign-out").hidden = true;
    $("#sign-in").hidden = false;
    $("#sign-in-error").textContent = message ? `${t("signInFailed")}: ${message}` : "";
    $("#siwe-button").disabled = !window.ethereum;
    $("#siwe-hint").textContent = window.ethereum ? t("siweHint") : t("noWallet");
  }

  function signOut(message = "") {
    sessionStorage.removeItem(TOKEN_KEY);
    summary = null;
    feed.clear();
    showSignIn(message);
  }

  async function signInWithEthereum() {
    const [account] = await window.ethereum.request({ method: "eth_requestAccounts" });
    const address = window.checksumAddress(account);
    const offer = await (await call("/v1/auth/nonce", { method: "POST" })).json();
    const message = [
      `${offer.domain} wants you to sign in with your Ethereum account:`,
      address,
      "",
      "Sign in to the city token platform.",
      "",
      `URI: ${location.origin}`,
      "Version: 1",
      `Chain ID: ${offer.chainId}`,
      `Nonce: ${offer.nonce}`,
      `Issued At: ${new Date().toISOString()}`,
    ].join("\n");
    const hex = `0x${[...new TextEncoder().encode(message)].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
    const signature = await window.ethereum.request({ method: "personal_sign", params: [hex, address] });
    const session = await call("/v1/auth/siwe", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ message, signature }),
    });
    return (await session.json()).token;
  }

  async function start() {
    try {
      summary = await (await call(`${API}/summary`)).json();
    } catch (error) {
      if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
        signOut(error.message);
        return;
      }
      showSignIn(error.message);
      return;
    }
    block = summary.block;
    $("#sign-in").hidden = true;
    $("#dashboard").hidden = false;
    $("#status").hidden = false;
    $("#sign-out").hidden = false;
    mergeFeed(summary.tables.payments.rows, false);
    render();
    followStream();
  }

  // --- the live stream --------------------------------------------------------------------------

  function stopStream() {
    if (stream) stream.abort();
    stream = null;
  }

  async function followStream() {
    stopStream();
    const controller = new AbortController();
    stream = controller;
    while (!controller.signal.aborted) {
      try {
        const after = Math.max(0, ...feed.keys());
        const response = await call(`${API}/stream?after=${after}`, {
          signal: controller.signal,
          headers: { Accept: "text/event-stream" },
        });
        setLive(true);
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value.replace(/\r\n/g, "\n");
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const message = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            try {
              onMessage(message);
            } catch (error) {
              console.error("dashboard: a pushed message was not shown", error);
            }
          }
        }
      } catch (error) {
        if (controller.signal.aborted) return;
        if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
          signOut(error.message);
          return;
        }
      }
      setLive(false);
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  }

  function onMessage(text) {
    let event = "message";
    const data = [];
    for (const line of text.split("\n")) {
      if (line.startsWith("event:")) event = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
    }
    if (!data.length) return; // a keep-alive comment
    const payload = JSON.parse(data.join("\n"));
    if (event === "payment") {
      mergeFeed([payload], true);
      renderFeed();
    } else if (event === "summary") {
      summary = payload;
      mergeFeed(summary.tables.payments.rows, false);
      render();
    } else if (event === "block") {
      block = payload;
      renderStatus();
    }
  }

  let live = false;

  function setLive(connected) {
    live = connected;
    $("#live-dot").classList.toggle("on", live);
    $("#live-text").textContent = live ? t("live") : t("reconnecting");
  }

  // --- alerts -----------------------------------------------------------------------------------

  function renderAlerts() {
    const table = summary.tables.alerts;
    const body = $("#alerts-body");
    const count = $("#alerts-count");
    $("#alerts-card h2").textContent = table.title[lang];
    count.textContent = String(table.rows.length);
    count.classList.toggle("hot", table.rows.length > 0);
    if (!table.rows.length) {
      const none = document.createElement("p");
      none.className = "empty";
      none.textContent = t("alertsNone");
      body.replaceChildren(none);
      return;
    }
    const list = document.createElement("ul");
    for (const alert of table.rows) {
      const item = document.createElement("li");
      const head = document.createElement("div");
      head.className = "alert-head";
      const rule = document.createElement("b");
      rule.textContent = `${alert.rule[lang]} · ${alert.subjectKind[lang]}`;
      const when = document.createElement("span");
      when.textContent = `${format("time", alert.time)} · ${t("block")} #${alert.block}`;
      head.append(rule, when);
      const text = document.createElement("p");
      text.textContent = alert.message;
      const subject = document.createElement("code");
      subject.textContent = alert.subject;
      item.append(head, text, subject);
      list.append(item);
    }
    body.replaceChildren(list);
  }

  // --- rendering --------------------------------------------------------------------------------

  function applyLanguage() {
    document.documentElement.lang = lang;
    for (const element of $$("[data-i18n]")) element.textContent = t(element.dataset.i18n);
    $("#lang-toggle").textContent = t("switchTo");
    $("#live-text").textContent = live ? t("live") : t("reconnecting");
    for (const button of $$("button.csv:not([data-i18n])")) button.textContent = t("csv");
    document.title = `${t("adminMode")} · ${cityName()}`;
  }

  const cityName = () => {
    const names = summary?.city || city;
    if (!names) return CITY;
    return lang === "ko" ? names.localName || names.name : names.name;
  };

  function render() {
    applyLanguage();
    $("#city-name").textContent = cityName();
    if (!summary) return;
    $("#fiscal-title").textContent = t("fiscalYear", summary.fiscalYear);
    $("#as-of").textContent = t("asOf", kst(summary.generatedAt).slice(0, 19).replace("T", " "));
    for (const element of $$("[data-kpi]")) {
      const key = element.dataset.kpi;
      element.textContent = format(kpiKind(key), summary.kpis[key]);
    }
    const used = Math.min(100, summary.kpis.capUsedPercent || 0);
    $("#cap-bar").style.width = `${Math.max(used, used > 0 ? 0.5 : 0)}%`;
    $("#kpi-issuance .bar").setAttribute("aria-valuenow", String(used));
    for (const card of $$('[data-table-card]:not([data-table-card="payments"])')) {
      renderTable(card, summary.tables[card.dataset.tableCard]);
    }
    renderFeed();
    renderCharts();
    renderStatus();
    renderAlerts();
  }

  function renderStatus() {
    if (!block) return;
    const parts = [`${t("block")} #${block.indexedTo ?? "–"}`];
    if (block.head !== null && block.indexedTo !== null && block.head > block.indexedTo) {
      parts.push(`${t("lag")} ${block.head - block.indexedTo} ${t("blocks")}`);
    }
    $("#block-text").textContent = parts.join(" · ");
  }

  function tableCard(card, table) {
    if (!card.firstChild) {
      card.innerHTML =
        '<header><h2></h2><button type="button" class="csv"></button></header><div class="table-wrap"><table><thead></thead><tbody></tbody></table></div>';
      $("button.csv", card).dataset.table = table.key;
    }
    $("h2", card).textContent = table.title[lang];
    $("button.csv", card).textContent = t("csv");
    const head = document.createElement("tr");
    for (const column of table.columns) {
      const th = document.createElement("th");
      th.textContent = column[lang];
      if (NUMERIC.has(column.kind)) th.className = "num";
      head.append(th);
    }
    $("thead", card).replaceChildren(head);
    return $("tbody", card);
  }

  function row(columns, values) {
    const tr = document.createElement("tr");
    for (const column of columns) {
      const td = document.createElement("td");
      const value = values[column.key];
      td.textContent = format(column.kind, value);
      td.dataset.col = column.key;
      if (NUMERIC.has(column.kind)) td.className = "num";
      if ((column.kind === "address" || column.kind === "tx") && value) {
        td.title = value;
        td.classList.add("mono");
      }
      tr.append(td);
    }
    return tr;
  }

  function emptyRow(columns) {
    const tr = document.createElement("tr");
    const td = document.createElement("td");
    td.colSpan = columns.length;
    td.className = "empty";
    td.textContent = t("noData");
    tr.append(td);
    return tr;
  }

  // Tables whose rows come oldest first (as the charts draw them), shown newest first; the hours
  // without a payment are left out of the hours table (the chart shows all 24).
  const NEWEST_FIRST = new Set(["daily", "monthly", "incentive"]);

  function renderTable(card, table) {
    const body = tableCard(card, table);
    let rows = table.rows;
    if (table.key === "hours") rows = rows.filter((r) => r.todayPayments || r.yearPayments);
    if (NEWEST_FIRST.has(table.key)) rows = [...rows].reverse();
    body.replaceChildren(...(rows.length ? rows.map((r) => row(table.columns, r)) : [emptyRow(table.columns)]));
  }

  function mergeFeed(rows, fresh) {
    const now = Date.now();
    for (const payment of rows) {
      if (fresh && !feed.has(payment.seq)) freshUntil.set(payment.seq, now + FRESH_MS);
      feed.set(payment.seq, payment);
    }
    const keep = [...feed.keys()].sort((a, b) => b - a).slice(0, FEED_ROWS);
    for (const seq of [...feed.keys()]) if (!keep.includes(seq)) feed.delete(seq);
  }

  function renderFeed() {
    if (!summary) return;
    const table = summary.tables.payments;
    const card = $('[data-table-card="payments"]');
    const body = tableCard(card, table);
    const now = Date.now();
    const rows = [...feed.values()].sort((a, b) => b.seq - a.seq);
    body.replaceChildren(
      ...(rows.length
        ? rows.map((payment) => {
            const tr = row(table.columns, payment);
            tr.dataset.seq = payment.seq;
            if ((freshUntil.get(payment.seq) || 0) > now) tr.classList.add("fresh");
            return tr;
          })
        : [emptyRow(table.columns)]),
    );
  }

  // --- charts -----------------------------------------------------------------------------------

  const PALETTE = ["#1f4e9c", "#2e86c1", "#17a589", "#d4ac0d", "#ca6f1e", "#a93226", "#7d3c98", "#566573", "#48c9b0", "#f1948a"];

  function chart(id, config) {
    if (!window.Chart) return null;
    if (!charts[id]) {
      charts[id] = new window.Chart($(`#${id}`), {
        ...config,
        options: {
          responsive: true,
          maintainAspectRatio: false,
          animation: false,
          plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } },
          ...config.options,
        },
      });
    }
    return charts[id];
  }

  function update(instance, labels, datasets) {
    if (!instance) return;
    instance.data.labels = labels;
    datasets.forEach((dataset, i) => {
      instance.data.datasets[i] = { ...instance.data.datasets[i], ...dataset };
    });
    instance.update("none");
  }

  const wonTicks = { callback: (value) => `₩${grouped.format(value)}` };

  function renderCharts() {
    const tables = summary.tables;
    const hours = tables.hours.rows;
    update(
      chart("chart-hours", {
        type: "bar",
        data: { labels: [], datasets: [{ backgroundColor: PALETTE[0] }, { type: "line", borderColor: PALETTE[3], backgroundColor: PALETTE[3], yAxisID: "year", tension: 0.3, pointRadius: 2 }] },
        options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 } }, year: { position: "right", beginAtZero: true, grid: { drawOnChartArea: false }, ticks: { precision: 0 } } } },
      }),
      hours.map((r) => pad(r.hour)),
      [
        { label: t("today"), data: hours.map((r) => r.todayPayments) },
        { label: t("yearSeries"), data: hours.map((r) => r.yearPayments) },
      ],
    );
    const daily = tables.daily.rows;
    update(
      chart("chart-daily", {
        type: "line",
        data: { labels: [], datasets: [{ borderColor: PALETTE[1], backgroundColor: "rgba(46,134,193,0.15)", fill: true, tension: 0.3, pointRadius: 2 }, { type: "bar", backgroundColor: "rgba(23,165,137,0.5)" }] },
        options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
      }),
      daily.map((r) => r.date.slice(5)),
      [
        { label: t("activeWallets"), data: daily.map((r) => r.activeWallets) },
        { label: t("payments"), data: daily.map((r) => r.payments) },
      ],
    );
    const categories = tables.categories.rows;
    update(
      chart("chart-categories", {
        type: "doughnut",
        data: { labels: [], datasets: [{ backgroundColor: PALETTE }] },
        options: { plugins: { legend: { position: "right" }, tooltip: { callbacks: { label: (c) => ` ${c.label}: ₩${grouped.format(c.raw)}` } } } },
      }),
      categories.map((r) => r.category[lang]),
      [{ label: t("amount"), data: categories.map((r) => r.amount) }],
    );
    const regions = tables.regions.rows;
    update(
      chart("chart-regions", {
        type: "bar",
        data: { labels: [], datasets: [{ backgroundColor: PALETTE[2] }] },
        options: { indexAxis: "y", plugins: { legend: { display: false } }, scales: { x: { beginAtZero: true, ticks: wonTicks } } },
      }),
      regions.map((r) => r.region[lang]),
      [{ label: t("amount"), data: regions.map((r) => r.amount) }],
    );
  }

  // --- CSV --------------------------------------------------------------------------------------

  async function downloadCsv(table) {
    const response = await call(`${API}/tables/${table}.csv?lang=${lang}`);
    const disposition = response.headers.get("Content-Disposition") || "";
    const name = (disposition.match(/filename="([^"]+)"/) || [])[1] || `${CITY}-${table}.csv`;
    const url = URL.createObjectURL(await response.blob());
    const link = document.createElement("a");
    link.href = url;
    link.download = name;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  // --- wiring -----------------------------------------------------------------------------------

  document.addEventListener("DOMContentLoaded", () => {
    applyLanguage();
    $("#city-name").textContent = CITY;
    fetch(API)
      .then((response) => (response.ok ? response.json() : null))
      .then((names) => {
        city = names;
        $("#city-name").textContent = cityName();
        document.title = `${t("adminMode")} · ${cityName()}`;
      });
    $("#lang-toggle").addEventListener("click", () => {
      lang = lang === "ko" ? "en" : "ko";
      localStorage.setItem(LANG_KEY, lang);
      render();
      if ($("#sign-in").hidden === false) showSignIn(signInError);
    });
    $("#sign-out").addEventListener("click", () => signOut());
    $("#key-form").addEventListener("submit", (event) => {
      event.preventDefault();
      sessionStorage.setItem(TOKEN_KEY, $("#api-key").value.trim());
      $("#api-key").value = "";
      start();
    });
    $("#siwe-button").addEventListener("click", async () => {
      try {
        sessionStorage.setItem(TOKEN_KEY, await signInWithEthereum());
        start();
      } catch (error) {
        showSignIn(error.message);
      }
    });
    document.addEventListener("click", (event) => {
      const button = event.target.closest("button.csv");
      if (button) downloadCsv(button.dataset.table).catch((error) => alert(error.message));
    });
    if (sessionStorage.getItem(TOKEN_KEY)) start();
    else showSignIn();
  });
})();
