// The order page: look an order up by id and lay it out for a person.
//
// Everything that comes from the server is untrusted. It only ever reaches the page through
// `textContent` (and through attributes this script builds itself, such as a link's `?id=`), never
// as HTML, so markup, quotes, emoji and right-to-left text in an order show as the text they are.
"use strict";

(() => {
  const API = "/api/v1/orders";
  const EVENTS = "/api/v1/events";
  const RECENT_LIMIT = 20;
  /** The longest wait between two attempts to reopen the stream of new orders. */
  const MOST_RETRY_MS = 30_000;

  const form = document.getElementById("lookup");
  const input = document.getElementById("order-id");
  const statusLine = document.getElementById("status");
  const orderView = document.getElementById("order");
  const recentList = document.getElementById("recent-list");
  const refreshButton = document.getElementById("refresh");
  const liveStatus = document.getElementById("live");

  // ---- DOM helpers -------------------------------------------------------------------------

  /** An element with the given text (set with textContent) and attributes. */
  function el(tag, text, attributes) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) {
      node.textContent = String(text);
    }
    for (const [name, value] of Object.entries(attributes || {})) {
      node.setAttribute(name, value);
    }
    return node;
  }

  /** A value for display: missing values show as a dash. */
  function shown(value) {
    return value === undefined || value === null || value === "" ? "—" : String(value);
  }

  function setStatus(message, kind) {
    statusLine.textContent = message;
    statusLine.className = kind || "";
  }

  /** A titled section holding a list of label / value pairs. Values are text or nodes. */
  function section(title, rows) {
    const box = el("section", null, { class: "block" });
    box.append(el("h3", title));
    const list = el("dl");
    for (const [label, value] of rows) {
      const dd = el("dd", null, { dir: "auto" });
      if (value instanceof Node) {
        dd.append(value);
      } else {
        dd.textContent = shown(value);
      }
      list.append(el("dt", label), dd);
    }
    box.append(list);
    return box;
  }

  // ---- Formatting --------------------------------------------------------------------------

  /** An amount in minor units (cents) in its currency, e.g. 1817 USD → "$18.17". */
  function money(minor, currency) {
    if (typeof minor !== "number" || !Number.isSafeInteger(minor)) {
      return shown(minor) + " " + shown(currency);
    }
    try {
      const format = new Intl.NumberFormat(undefined, { style: "currency", currency });
      const digits = format.resolvedOptions().maximumFractionDigits;
      return format.format(minor / 10 ** digits);
    } catch (error) {
      // Not a currency code the browser knows how to write: assume two decimals.
      return (minor / 100).toFixed(2) + " " + shown(currency);
    }
  }

  /** A <time> showing a date in the reader's locale, with the exact value as a tooltip. */
  function time(date, exact) {
    if (Number.isNaN(date.getTime())) {
      return document.createTextNode(shown(exact));
    }
    const node = el("time", date.toLocaleString(), { datetime: date.toISOString() });
    node.title = String(exact);
    return node;
  }

  // ---- The order ---------------------------------------------------------------------------

  function showOrder(order) {
    const delivery = order.delivery || {};
    const payment = order.payment || {};
    const items = Array.isArray(order.items) ? order.items : [];
    const currency = payment.currency;

    const heading = el("h2", "Order ");
    heading.append(el("span", order.order_uid, { dir: "auto", class: "uid" }));

    const summary = section("Summary", [
      ["Order id", order.order_uid],
      ["Track number", order.track_number],
      ["Customer", order.customer_id],
      ["Created", time(new Date(order.date_created), order.date_created)],
      ["Locale", order.locale],
      ["Delivery service", order.delivery_service],
      ["Entry", order.entry],
      ["Shard key", order.shardkey],
      ["SM id", order.sm_id],
      ["OOF shard", order.oof_shard],
      ["Internal signature", order.internal_signature],
    ]);

    const deliveryBlock = section("Delivery", [
      ["Name", delivery.name],
      ["Phone", delivery.phone],
      ["E-mail", delivery.email],
      ["Address", delivery.address],
      ["City", delivery.city],
      ["Region", delivery.region],
      ["Postcode", delivery.zip],
    ]);

    const total = el("strong", money(payment.amount, currency));
    const paymentBlock = section("Payment", [
      ["Transaction", payment.transaction],
      ["Request id", payment.request_id],
      ["Provider", payment.provider],
      ["Bank", payment.bank],
      ["Paid", time(new Date(payment.payment_dt * 1000), payment.payment_dt)],
      ["Currency", currency],
      ["Goods", money(payment.goods_total, currency)],
      ["Delivery", money(payment.delivery_cost, currency)],
      ["Customs fee", money(payment.custom_fee, currency)],
      ["Total", total],
    ]);

    const blocks = el("div", null, { class: "blocks" });
    blocks.append(summary, deliveryBlock, paymentBlock);
    orderView.replaceChildren(heading, blocks, itemsTable(items, currency));
    orderView.hidden = false;
  }

  function itemsTable(items, currency) {
    const box = el("section", null, { class: "items" });
    box.append(el("h3", "Items (" + items.length + ")"));
    const table = el("table");
    const columns = [
      ["Name", (it) => it.name, "text"],
      ["Brand", (it) => it.brand, "text"],
      ["Size", (it) => it.size, "text"],
      ["Price", (it) => money(it.price, currency), "number"],
      ["Sale", (it) => shown(it.sale) + " %", "number"],
      ["Total", (it) => money(it.total_price, currency), "number"],
      ["Status", (it) => it.status, "number"],
      ["chrt_id", (it) => it.chrt_id, "number"],
      ["nm_id", (it) => it.nm_id, "number"],
      ["rid", (it) => it.rid, "text"],
    ];
    const headRow = el("tr");
    for (const [title, , kind] of columns) {
      headRow.append(el("th", title, { scope: "col", class: kind }));
    }
    const head = el("thead");
    head.append(headRow);
    const body = el("tbody");
    for (const item of items) {
      const row = el("tr");
      for (const [, value, kind] of columns) {
        row.append(el("td", shown(value(item || {})), { dir: "auto", class: kind }));
      }
      body.append(row);
    }
    table.append(head, body);
    const scroller = el("div", null, { class: "scroll" });
    scroller.append(table);
    box.append(scroller);
    return box;
  }

  // ---- Look-up -----------------------------------------------------------------------------

  let inFlight = null;

  async function lookUp(rawId) {
    const id = rawId.trim();
    input.value = id;
    if (inFlight) {
      inFlight.abort();
    }
    orderView.hidden = true;
    orderView.replaceChildren();
    if (id === "") {
      setStatus("");
      return;
    }
    // Browsers resolve "." and ".." in paths before sending: they cannot reach the server intact.
    if (id === "." || id === "..") {
      setStatus("This is not a valid order id: it may hold only A-Z, a-z, 0-9, '_' and '-'.", "error");
      return;
    }
    const controller = new AbortController();
    inFlight = controller;
    setStatus("Looking up the order…");
    let response;
    let body = null;
    try {
      response = await fetch(API + "/" + encodeURIComponent(id), {
        headers: { Accept: "application/json" },
        signal: controller.signal,
      });
      body = await response.json().catch(() => null);
    } catch (error) {
      if (controller.signal.aborted) {
        return;
      }
      setStatus("The service cannot be reached. Check the connection and try again.", "error");
      return;
    }
    if (controller !== inFlight) {
      return;
    }
    inFlight = null;
    if (response.ok && body) {
      setStatus("");
      showOrder(body);
    } else if (response.status === 404) {
      setStatus("No order has the id “" + id + "”.", "notice");
    } else if (response.status === 400) {
      const reason = body && body.error ? body.error : "the server refused it.";
      setStatus("This is not a valid order id: " + reason, "error");
    } else if (response.status === 503) {
      setStatus("The service is starting and still loading orders. Try again in a few seconds.", "notice");
    } else {
      setStatus("The server could not answer (HTTP " + response.status + "). Try again later.", "error");
    }
  }

  /** Looks an order up and records its id in the address, so that the link can be shared. */
  function navigate(id) {
    const url = new URL(window.location.href);
    url.hash = "";
    url.searchParams.set("id", id.trim());
    if (url.href !== window.location.href) {
      history.pushState(null, "", url.href);
    }
    lookUp(id);
  }

  /** The id given in the address: `?id=...` or `#...`. */
  function idFromAddress() {
    const fromQuery = new URLSearchParams(window.location.search).get("id");
    if (fromQuery !== null) {
      return fromQuery;
    }
    const hash = window.location.hash.slice(1);
    try {
      return decodeURIComponent(hash);
    } catch (error) {
      return hash;
    }
  }

  // ---- Latest orders -----------------------------------------------------------------------

  async function loadRecent() {
    let ids;
    try {
      const response = await fetch(API + "?limit=" + RECENT_LIMIT, {
        headers: { Accept: "application/json" },
      });
      if (response.status === 503) {
        recentList.replaceChildren(el("li", "The service is starting; refresh in a moment."));
        return;
      }
      const body = await response.json();
      ids = response.ok && Array.isArray(body.order_uids) ? body.order_uids : null;
    } catch (error) {
      ids = null;
    }
    if (ids === null) {
      recentList.replaceChildren(el("li", "The latest orders cannot be loaded right now."));
      return;
    }
    if (ids.length === 0) {
      recentList.replaceChildren(el("li", "No orders yet."));
      return;
    }
    recentList.replaceChildren(...ids.map(recentItem));
  }

  /** A list item linking to the order `id`. */
  function recentItem(id) {
    const link = el("a", id, { href: "?id=" + encodeURIComponent(id), dir: "auto" });
    link.addEventListener("click", (event) => {
      event.preventDefault();
      navigate(String(id));
    });
    const item = el("li", null, { "data-order-uid": String(id) });
    item.append(link);
    return item;
  }

  /** Puts `id` at the top of the list (once), keeping the latest RECENT_LIMIT. */
  function addRecent(id) {
    for (const item of Array.from(recentList.children)) {
      // A message such as "No orders yet." has no id; the same order is not listed twice.
      if (!item.hasAttribute("data-order-uid") || item.getAttribute("data-order-uid") === id) {
        item.remove();
      }
    }
    recentList.prepend(recentItem(id));
    while (recentList.children.length > RECENT_LIMIT) {
      recentList.lastElementChild.remove();
    }
  }

  // ---- New orders, as they arrive ----------------------------------------------------------
  //
  // The api streams each new order (server-sent events). The browser reconnects by itself after
  // a dropped connection and says which order it saw last (Last-Event-ID), so that none is
  // missed. When the api answers with an error instead (it is restarting, or not ready), the
  // browser gives up: the page then opens a new stream itself, later and later, from the last
  // order it saw (`after`).

  let lastSeq = null;
  let retryMs = 1000;

  function setLive(state, message) {
    liveStatus.dataset.state = state;
    liveStatus.textContent = message;
  }

  /** An event's data, or null when it is not the JSON the api sends. */
  function eventData(event) {
    try {
      const data = JSON.parse(event.data);
      return Number.isSafeInteger(data.seq) ? data : null;
    } catch (error) {
      return null;
    }
  }

  function follow() {
    const source = new EventSource(lastSeq === null ? EVENTS : EVENTS + "?after=" + lastSeq);
    source.addEventListener("open", () => {
      retryMs = 1000;
      setLive("live", "Live");
      if (lastSeq === null && recentList.children.length === 0) {
        recentList.replaceChildren(el("li", "No orders yet."));
      }
    });
    source.addEventListener("order", (event) => {
      const data = eventData(event);
      if (data !== null && typeof data.order_uid === "string") {
        lastSeq = data.seq;
        addRecent(data.order_uid);
      }
    });
    source.addEventListener("reset", (event) => {
      const data = eventData(event);
      if (data !== null) {
        lastSeq = data.seq;
        loadRecent();
      }
    });
    source.addEventListener("error", () => {
      if (source.readyState === EventSource.CONNECTING) {
        setLive("reconnecting", "Disconnected; reconnecting…");
        return;
      }
      source.close();
      const seconds = Math.round(retryMs / 1000);
      setLive("disconnected", `Disconnected; trying again in ${seconds} s`);
      setTimeout(follow, retryMs);
      retryMs = Math.min(retryMs * 2, MOST_RETRY_MS);
    });
  }

  // ---- Wiring ------------------------------------------------------------------------------

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    navigate(input.value);
  });
  refreshButton.addEventListener("click", loadRecent);
  window.addEventListener("popstate", () => lookUp(idFromAddress()));

  const initial = idFromAddress();
  if (initial) {
    lookUp(initial);
  }
  // The stream starts with the latest orders: it fills the list.
  follow();
})();
