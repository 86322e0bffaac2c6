// The web page, used as a person would: in a real headless Chromium (Debian's, never a
// downloaded one), against a running api that holds model.json and the valid orders of the
// hostile-input corpus. scripts/check-live starts all that and runs this file with node's own
// test runner:
//
//   LIVE_API_URL       the api, e.g. http://127.0.0.1:18090
//   LIVE_SCREENSHOTS   the folder that receives a screenshot of every case
//   LIVE_CORPUS        ingestor/tests/ingestor/corpus, whose manifest names the stored orders
//   CHROMIUM_BIN       the browser (default /usr/bin/chromium)

import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { chromium } from "playwright-core";

const API_URL = required("LIVE_API_URL");
const SCREENSHOTS = required("LIVE_SCREENSHOTS");
const CORPUS = required("LIVE_CORPUS");
const CHROMIUM_BIN = process.env.CHROMIUM_BIN || "/usr/bin/chromium";

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
const PAGE_REQUESTS = /^\/(|app\.js|app\.css|favicon\.svg|api\/v1\/orders(\/[^/]+)?)$/;

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
