// The web page, used as a person would: in a real headless Chromium (Debian's, never a
// downloaded one), against a running api that holds model.json and the valid orders of the
// hostile-input corpus. scripts/check-live starts all that and runs this file with node's own
// test runner:
//
//   LIVE_API_URL       the api, e.g. http://127.0.0.1:18090
//   LIVE_SCREENSHOTS   the folder that receives a screenshot of every case
//   LIVE_CORPUS        ingestor/tests/ingestor/corpus, whose manifest names the stored orders
//   CHROMIUM_BIN       the browser (default /usr/bin/chromium)
//   LIVE_MODEL         model.json, the sample order that orders published here are copies of
//   LIVE_PUBLISHER     the publisher binary, and LIVE_NATS_URL, LIVE_STAN_CLUSTER_ID and
//                      LIVE_STAN_CHANNEL, the channel the ingestor consumes: orders published
//                      while the page is open must appear in it
//   LIVE_API_BIN, LIVE_API_PID_FILE, LIVE_API_LOG, LIVE_API_ENV (its environment, one
//                      NAME=value a line): to stop the api and start it again, as
//                      scripts/check-live started it

import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { openSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, describe, test } from "node:test";

import { chromium } from "playwright-core";

const API_URL = required("LIVE_API_URL");
const SCREENSHOTS = required("LIVE_SCREENSHOTS");
const CORPUS = required("LIVE_CORPUS");
const CHROMIUM_BIN = process.env.CHROMIUM_BIN || "/usr/bin/chromium";
const MODEL = required("LIVE_MODEL");
const PUBLISHER = required("LIVE_PUBLISHER");
const NATS_URL = required("LIVE_NATS_URL");
const STAN_CLUSTER_ID = required("LIVE_STAN_CLUSTER_ID");
const STAN_CHANNEL = required("LIVE_STAN_CHANNEL");
const API_BIN = required("LIVE_API_BIN");
const API_PID_FILE = required("LIVE_API_PID_FILE");
const API_LOG = required("LIVE_API_LOG");
const API_ENV = required("LIVE_API_ENV");

/** The order of model.json. */
const SAMPLE_UID = "b563feb7b2b84b6test";
/** How long the page may take to show a result. */
const PATIENCE_MS = 10_000;

/** Every element the page is made of: index.html's own, and those app.js creates. */
const PAGE_ELEMENTS = new Set(
  (
    "html head meta title link script body header h1 form label input button main p article " +
    "section ol li a footer h2 span div h3 dl dt dd time strong table thead tbody tr th td"
  ).split(" "),
);
/** Paths the page may request: itself, its script, style sheet and icon, and the orders. */
const PAGE_REQUESTS = /^\/(|app\.js|app\.css|favicon\.svg|api\/v1\/orders(\/[^/]+)?|api\/v1\/events)$/;

function required(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set: run this test through scripts/check-live`);
  }
  return value;
}

/** The valid orders of the corpus: markup, emoji, right-to-left text and more in free text. */
const HOSTILE = JSON.parse(await readFile(join(CORPUS, "manifest.json"), "utf8")).messages.filter(
  (message) => message.expect.stored,
);
assert.ok(HOSTILE.length > 0, "the corpus manifest lists stored orders");

let profile;
let context;
let shots = 0;

before(async () => {
  profile = await mkdtemp(join(tmpdir(), "orders-page-chromium-"));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM_BIN,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    locale: "en-US",
    timezoneId: "UTC",
    viewport: { width: 1280, height: 900 },
  });
});

after(async () => {
  await context?.close();
  if (profile) {
    await rm(profile, { recursive: true, force: true });
  }
});

/**
 * A new tab on the page, recording what a person would not see: dialogs (an injected
 * `alert(1)`), console errors, uncaught exceptions, and requests the page should not make.
 */
async function openPage(path = "/") {
  const page = await context.newPage();
  const seen = { dialogs: [], consoleErrors: [], exceptions: [], strayRequests: [] };
  page.on("dialog", (dialog) => {
    seen.dialogs.push(`${dialog.type()}: ${dialog.message()}`);
    dialog.dismiss().catch(() => {});
  });
  page.on("console", (message) => {
    if (message.type() === "error") {
      seen.consoleErrors.push({ text: message.text(), url: message.location().url });
    }
  });
  page.on("pageerror", (error) => seen.exceptions.push(String(error)));
  page.on("request", (request) => {
    const url = new URL(request.url());
    if (url.origin !== API_URL || !PAGE_REQUESTS.test(url.pathname)) {
      seen.strayRequests.push(request.url());
    }
  });
  const response = await page.goto(API_URL + path);
  assert.equal(response.status(), 200, `GET ${path} answers 200`);
  await page.locator("#recent-list li").first().waitFor({ timeout: PATIENCE_MS });
  return { page, seen };
}

/** Takes a screenshot of the whole page into LIVE_SCREENSHOTS and prints its path. */
async function screenshot(page, name) {
  shots += 1;
  const path = join(SCREENSHOTS, `${String(shots).padStart(2, "0")}-${name}.png`);
  await page.screenshot({ path, fullPage: true });
  console.log(`screenshot: ${path}`);
}

/** Types an id into the form and presses its button, as a person would. */
async function lookUp(page, id) {
  await page.getByLabel("Order id").fill(id);
  await page.getByRole("button", { name: "Show order" }).click();
}

/** Waits for the order to be shown; fails with the status line's text if it is not. */
async function waitForOrder(page) {
  try {
    await page.locator("#order").waitFor({ state: "visible", timeout: PATIENCE_MS });
  } catch (error) {
    const status = await page.locator("#status").textContent();
    assert.fail(`the order is not shown within ${PATIENCE_MS} ms; the status line says: "${status}"`);
  }
}

/** What the order view shows: each block's label → text, and each item row's column → text. */
function rendered(page) {
  return page.evaluate(() => {
    const view = document.getElementById("order");
    const blocks = {};
    for (const block of view.querySelectorAll("section.block")) {
      const rows = {};
      for (const dt of block.querySelectorAll("dt")) {
        rows[dt.textContent] = dt.nextElementSibling.textContent;
      }
      blocks[block.querySelector("h3").textContent] = rows;
    }
    const columns = [...view.querySelectorAll("thead th")].map((th) => th.textContent);
    const items = [...view.querySelectorAll("tbody tr")].map((row) =>
      Object.fromEntries([...row.children].map((cell, i) => [columns[i], cell.textContent])),
    );
    return {
      heading: view.querySelector("h2")?.textContent,
      itemsTitle: view.querySelector("section.items h3")?.textContent,
      blocks,
      items,
    };
  });
}

/** How the page writes a value: as it is, a dash when empty. */
function shown(value) {
  return value === undefined || value === null || value === "" ? "—" : String(value);
}

/** Every field of an order that the page shows as it is, by block and label. */
function expectedText(order) {
  const { delivery: d, payment: p } = order;
  return {
    blocks: {
      Summary: {
        "Order id": order.order_uid,
        "Track number": order.track_number,
        Customer: order.customer_id,
        Locale: order.locale,
        "Delivery service": order.delivery_service,
        Entry: order.entry,
        "Shard key": order.shardkey,
        "SM id": order.sm_id,
        "OOF shard": order.oof_shard,
        "Internal signature": order.internal_signature,
      },
      Delivery: {
        Name: d.name,
        Phone: d.phone,
        "E-mail": d.email,
        Address: d.address,
        City: d.city,
        Region: d.region,
        Postcode: d.zip,
      },
      Payment: {
        Transaction: p.transaction,
        "Request id": p.request_id,
        Provider: p.provider,
        Bank: p.bank,
        Currency: p.currency,
      },
    },
    items: order.items.map((item) => ({
      Name: item.name,
      Brand: item.brand,
      Size: item.size,
      Status: item.status,
      chrt_id: item.chrt_id,
      nm_id: item.nm_id,
      rid: item.rid,
    })),
  };
}

/** Asserts that every field of `order` is on the page, character for character. */
function assertShowsOrder(view, order) {
  const expected = expectedText(order);
  assert.equal(view.heading, `Order ${order.order_uid}`, "the heading names the order");
  for (const [block, rows] of Object.entries(expected.blocks)) {
    assert.ok(view.blocks[block], `the page has a "${block}" block`);
    for (const [label, value] of Object.entries(rows)) {
      assert.equal(
        view.blocks[block][label],
        shown(value),
        `${block} / ${label} shows the order's value as text`,
      );
    }
  }
  assert.equal(view.itemsTitle, `Items (${order.items.length})`, "the items table counts the items");
  assert.equal(view.items.length, order.items.length, "the items table has a row per item");
  expected.items.forEach((item, i) => {
    for (const [column, value] of Object.entries(item)) {
      assert.equal(view.items[i][column], shown(value), `item ${i + 1} / ${column} shows as text`);
    }
  });
}

/** Asserts that nothing was injected: no dialog, no error, no foreign element or request. */
async function assertNothingRan(page, seen, allowedConsoleError = () => false) {
  assert.deepEqual(seen.dialogs, [], "no dialog opened: no injected script ran");
  assert.deepEqual(seen.exceptions, [], "no uncaught exception in the page");
  const errors = seen.consoleErrors.filter((e) => !allowedConsoleError(e));
  assert.deepEqual(errors, [], "no error in the console (a CSP violation would be one)");
  assert.deepEqual(seen.strayRequests, [], "the page requested nothing but itself and the api");
  const dom = await page.evaluate(() => ({
    tags: [...new Set([...document.querySelectorAll("*")].map((e) => e.localName))],
    scripts: [...document.scripts].map((s) => s.getAttribute("src")),
    handlers: [...document.querySelectorAll("*")].flatMap((e) =>
      [...e.attributes].filter((a) => a.name.startsWith("on")).map((a) => `${e.localName} ${a.name}`),
    ),
  }));
  const foreign = dom.tags.filter((tag) => !PAGE_ELEMENTS.has(tag));
  assert.deepEqual(foreign, [], "no element but the page's own (no injected <script>, <img>, ...)");
  assert.deepEqual(dom.scripts, ["/app.js"], "the page's one script is its own");
  assert.deepEqual(dom.handlers, [], "no element has an inline event handler");
}

async function fetchOrder(uid) {
  const response = await fetch(`${API_URL}/api/v1/orders/${encodeURIComponent(uid)}`);
  assert.equal(response.status, 200, `the api serves ${uid}`);
  return response.json();
}

describe("the order page in Chromium", () => {
  test("a person looks up the sample order and sees its summary, delivery, payment and items", async () => {
    const { page, seen } = await openPage();
    try {
      await lookUp(page, SAMPLE_UID);
      await waitForOrder(page);
      const view = await rendered(page);
      assertShowsOrder(view, await fetchOrder(SAMPLE_UID));
      // Amounts in the order's currency and times in the reader's locale (en-US, UTC here).
      assert.equal(view.blocks.Summary.Created, "11/26/2021, 6:22:19 AM", "the creation time");
      assert.equal(view.blocks.Payment.Paid, "11/26/2021, 6:22:07 AM", "the payment time");
      assert.equal(view.blocks.Payment.Goods, "$3.17", "the goods total, in dollars");
      assert.equal(view.blocks.Payment.Delivery, "$15.00", "the delivery cost");
      assert.equal(view.blocks.Payment["Customs fee"], "$0.00", "the customs fee");
      assert.equal(view.blocks.Payment.Total, "$18.17", "the amount");
      assert.equal(view.items[0].Price, "$4.53", "the item's price");
      assert.equal(view.items[0].Sale, "30 %", "the item's sale");
      assert.equal(view.items[0].Total, "$3.17", "the item's total");
      assert.equal(await page.locator("#status").textContent(), "", "no status message");
      assert.equal(new URL(page.url()).searchParams.get("id"), SAMPLE_UID, "the address names the order");
      await assertNothingRan(page, seen);
    } finally {
      await screenshot(page, "sample-order");
      await page.close();
    }
  });

  test("a shared link to an order shows it, and the latest orders list leads to it", async () => {
    const { page, seen } = await openPage(`/?id=${SAMPLE_UID}`);
    try {
      await waitForOrder(page);
      assert.equal((await rendered(page)).heading, `Order ${SAMPLE_UID}`, "the linked order is shown");
      const link = page.locator("#recent-list a", { hasText: "corpus-html" });
      await link.click();
      await page.waitForFunction(
        () => document.querySelector("#order h2")?.textContent === "Order corpus-html",
        null,
        { timeout: PATIENCE_MS },
      );
      assert.equal(new URL(page.url()).searchParams.get("id"), "corpus-html", "the address follows");
      await assertNothingRan(page, seen);
    } finally {
      await screenshot(page, "latest-orders-link");
      await page.close();
    }
  });

  test("a person looks up an id that no order has and is told so", async () => {
    const missing = "no-such-order-42";
    const { page, seen } = await openPage();
    try {
      await lookUp(page, missing);
      const status = page.locator("#status");
      await page.waitForFunction(
        () => document.getElementById("status").className !== "",
        null,
        { timeout: PATIENCE_MS },
      );
      assert.equal(await status.textContent(), `No order has the id “${missing}”.`, "the message");
      assert.equal(await status.getAttribute("class"), "notice", "shown as a notice");
      assert.equal(await page.locator("#order").isHidden(), true, "no order is shown");
      // The browser logs the api's 404 itself: that one error is expected.
      await assertNothingRan(page, seen, (e) => e.url.endsWith(`/api/v1/orders/${missing}`));
    } finally {
      await screenshot(page, "missing-order");
      await page.close();
    }
  });
});

describe("hostile orders show their text as text, and nothing runs", () => {
  for (const { expect, about } of HOSTILE) {
    const uid = expect.stored;
    test(`${uid}: ${about}`, async () => {
      const order = await fetchOrder(uid);
      const { page, seen } = await openPage();
      try {
        await lookUp(page, uid);
        await waitForOrder(page);
        assertShowsOrder(await rendered(page), order);
        // Shown on screen, not merely in the document: no injected style hides it.
        assert.ok(await page.locator("#order dd").first().isVisible(), "the order is visible");
        await assertNothingRan(page, seen);
      } finally {
        await screenshot(page, uid.slice(0, 40));
        await page.close();
      }
    });
  }
});

// ---- The latest orders, live ------------------------------------------------------------------

/** How long a published order may take to appear in the list; measured and printed each time. */
const APPEARS_WITHIN_MS = 5_000;
/** How long the page may take to reconnect after the api is back (it waits 1, 2, 4 s... between tries). */
const RECONNECT_MS = 30_000;

/** Publishes model.json under each of `uids`, through the project's publisher. */
async function publish(uids) {
  const sample = JSON.parse(await readFile(MODEL, "utf8"));
  const dir = await mkdtemp(join(tmpdir(), "orders-page-publish-"));
  try {
    const files = [];
    for (const uid of uids) {
      const file = join(dir, `${uid}.json`);
      await writeFile(file, JSON.stringify({ ...sample, order_uid: uid, payment: { ...sample.payment, transaction: uid } }));
      files.push(file);
    }
    await promisify(execFile)(PUBLISHER, [
      "--nats-url", NATS_URL, "--cluster-id", STAN_CLUSTER_ID, "--channel", STAN_CHANNEL,
      "--connections", "1", "--quiet", "file", ...files,
    ]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The ids the latest orders list shows, top first. */
function listed(page) {
  return page.locator("#recent-list li").evaluateAll((items) => items.map((li) => li.textContent));
}

/** Waits until `uid` is listed; returns how long that took. */
async function waitListed(page, uid, timeout) {
  const started = Date.now();
  await page.locator(`#recent-list li[data-order-uid="${uid}"]`).waitFor({ timeout });
  return Date.now() - started;
}

async function waitLive(page, state, timeout) {
  await page.waitForFunction((s) => document.getElementById("live").dataset.state === s, state, { timeout });
}

async function apiPid() {
  return Number((await readFile(API_PID_FILE, "utf8")).trim());
}

/** Stops the api (SIGTERM) and waits until it has exited. */
async function stopApi() {
  const pid = await apiPid();
  process.kill(pid, "SIGTERM");
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      process.kill(pid, 0);
    } catch (error) {
      return;
    }
    assert.ok(Date.now() < deadline, "the api exits within 30 s of SIGTERM");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Starts the api again as scripts/check-live did (same binary, environment, log and pid file). */
async function startApi() {
  const env = Object.fromEntries(
    API_ENV.split("\n").filter(Boolean).map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]),
  );
  const log = openSync(API_LOG, "a");
  const child = spawn(API_BIN, [], { env, detached: true, stdio: ["ignore", log, log] });
  child.unref();
  await writeFile(API_PID_FILE, `${child.pid}\n`);
  const deadline = Date.now() + 60_000;
  for (;;) {
    const ready = await fetch(`${API_URL}/readyz`).then((r) => r.ok, () => false);
    if (ready) {
      return;
    }
    assert.ok(Date.now() < deadline, "the restarted api is ready within 60 s");
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

describe("the latest orders update themselves", () => {
  test("orders published with the page open appear; after the api restarts, the page reconnects and shows those published meanwhile", async () => {
    // With the sample order shown, as a person would have the page: its screenshot is the README's.
    const { page, seen } = await openPage(`/?id=${SAMPLE_UID}`);
    const run = Date.now().toString(36);
    try {
      await waitForOrder(page);
      await waitLive(page, "live", PATIENCE_MS);
      // The stream's first events are the latest orders: the hostile ones among them, as text.
      const first = await listed(page);
      for (const { expect } of HOSTILE) {
        assert.ok(first.includes(expect.stored), `${expect.stored} is listed: ${first}`);
      }
      const shape = await page.locator("#recent-list li").evaluateAll((items) =>
        items.map((li) => [...li.childNodes].map((n) => n.nodeName).join(",")),
      );
      assert.ok(shape.every((nodes) => nodes === "A"), `each item is one link: ${shape}`);

      const live = [1, 2, 3].map((i) => `page-live-${run}-${i}`);
      for (const uid of live) {
        await publish([uid]);
        const took = await waitListed(page, uid, APPEARS_WITHIN_MS);
        console.log(`${uid} listed ${took} ms after its publish returned`);
      }
      assert.deepEqual((await listed(page)).slice(0, 3), [...live].reverse(), "newest first");
      await screenshot(page, "live-orders");

      await stopApi();
      await page.waitForFunction(
        () => document.getElementById("live").dataset.state !== "live",
        null,
        { timeout: PATIENCE_MS },
      );
      const meanwhile = [1, 2].map((i) => `page-meanwhile-${run}-${i}`);
      await publish(meanwhile);
      await screenshot(page, "live-disconnected");
      await startApi();
      await waitLive(page, "live", RECONNECT_MS);
      for (const uid of meanwhile) {
        await waitListed(page, uid, PATIENCE_MS);
      }
      assert.deepEqual(
        (await listed(page)).slice(0, 5),
        [...meanwhile].reverse().concat([...live].reverse()),
        "the orders published while the api was down, then the earlier ones, each once",
      );
      // While the api was down the browser logged its failed attempts to reach the stream.
      await assertNothingRan(page, seen, (e) => e.url.includes("/api/v1/events") || /ERR_CONNECTION_REFUSED|503/.test(e.text));
    } finally {
      await screenshot(page, "live-reconnected");
      await page.close();
    }
  });
});
