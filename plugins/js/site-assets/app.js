// A `smoke-suite` in JavaScript that uses the web's own `fetch()`: componentize-js sends it
// through `wasi:http/outgoing-handler`, which the host gates with the stage's allow-list exactly
// like its `http` capability (a host off the list makes `fetch` reject), records each exchange
// for replay, and answers from the recording when the call is replayed or a fixture is canned.
//
// It loads the site's page and checks what a deploy most often breaks: the page answers 200 as
// HTML, and every script and stylesheet it references is there (200, a JS or CSS content type).
// The export is `async`: componentize-js runs the event loop until its promise settles.

import { log } from "launch:plugin/log@0.1.0";

const DEFAULTS = { path: "/", "max-assets": 20 };

const SCHEMA = JSON.stringify({
  $schema: "https://json-schema.org/draft/2020-12/schema",
  type: "object",
  additionalProperties: false,
  properties: {
    path: { type: "string" },
    "max-assets": { type: "integer", minimum: 0, maximum: 200 },
  },
});

const pass = () => ({ tag: "pass" });
const fail = (val) => ({ tag: "fail", val });
const noData = (val) => ({ tag: "no-data", val });

/** A check in the contract's shape (records are objects with camelCase fields). */
function check(name, verdict, detail, observed) {
  return { name, verdict, observed, threshold: undefined, unit: observed === undefined ? "" : "status", detail };
}

/** The scripts and stylesheets a page references, as absolute URLs. */
function assets(html, pageUrl) {
  const found = new Set();
  for (const m of html.matchAll(/<(?:script[^>]*\ssrc|link[^>]*\shref)\s*=\s*["']([^"']+)["']/gi)) {
    found.add(new URL(m[1], pageUrl).href);
  }
  return [...found];
}

function why(e) {
  // A denied host or a refused connection rejects `fetch` with a TypeError.
  return e && e.message ? e.message : String(e);
}

export const describe = {
  describe() {
    return {
      name: "site-assets",
      version: "0.1.0",
      role: "smoke-suite",
      description: "The page answers as HTML and every script and stylesheet it references loads (JavaScript, fetch)",
      capabilities: ["log", "http"],
      configSchema: SCHEMA,
    };
  },
};

export const smokeSuite = {
  async run(target, configJson) {
    const cfg = { ...DEFAULTS, ...JSON.parse(configJson || "{}") };
    const pageUrl = target.baseUrl + cfg.path;
    let page;
    try {
      page = await fetch(pageUrl);
    } catch (e) {
      const reason = `${pageUrl}: ${why(e)}`;
      return { verdict: noData(reason), checks: [check("page", noData(reason), pageUrl)], summary: `site-assets: ${reason}` };
    }
    const type = page.headers.get("content-type") || "";
    const html = await page.text();
    const checks = [
      check(
        "page",
        page.status === 200 && type.includes("text/html") ? pass() : fail(`${pageUrl} answered ${page.status} ${type}`),
        `GET ${pageUrl} → ${page.status} ${type}`,
        page.status,
      ),
    ];
    const urls = assets(html, pageUrl).slice(0, cfg["max-assets"]);
    log("info", `site-assets: ${urls.length} asset(s) referenced by ${pageUrl}`);
    for (const url of urls) {
      const name = new URL(url).pathname;
      try {
        const res = await fetch(url);
        const ctype = res.headers.get("content-type") || "";
        await res.arrayBuffer();
        const ok = res.status === 200 && /javascript|css/.test(ctype);
        checks.push(check(name, ok ? pass() : fail(`${url} answered ${res.status} ${ctype}`), `GET ${url} → ${res.status} ${ctype}`, res.status));
      } catch (e) {
        checks.push(check(name, noData(`${url}: ${why(e)}`), url, undefined));
      }
    }
    const failed = checks.find((c) => c.verdict.tag === "fail");
    const missing = checks.find((c) => c.verdict.tag === "no-data");
    const verdict = failed ? fail(`${failed.name}: ${failed.verdict.val}`) : missing ? noData(missing.verdict.val) : pass();
    const ok = checks.filter((c) => c.verdict.tag === "pass").length;
    return { verdict, checks, summary: `site-assets: ${ok}/${checks.length} checks passed on ${target.baseUrl}` };
  },
};
