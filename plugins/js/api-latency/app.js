// A `step` policy in JavaScript: GET each configured API path (or absolute URL) `samples` times through the
// host's `http` capability (so the stage's allow-list applies), and judge status and latency.
// The contract's shapes in JS (componentize-js): records are objects with camelCase fields,
// variants are `{ tag, val }`, enums are strings, u64 are BigInt, option<T> is T or undefined,
// and a `result` import throws its error.

import { send } from "launch:plugin/http@0.1.0";
import { log } from "launch:plugin/log@0.1.0";

const DEFAULTS = { paths: ["/api/health", "/api/admin/dashboard/stats"], samples: 5, "max-p95-ms": 800 };

const SCHEMA = JSON.stringify({
  $schema: "https://json-schema.org/draft/2020-12/schema",
  type: "object",
  additionalProperties: false,
  properties: {
    paths: { type: "array", items: { type: "string" }, minItems: 1 },
    samples: { type: "integer", minimum: 1, maximum: 100 },
    "max-p95-ms": { type: "number", exclusiveMinimum: 0 },
  },
});

/** @returns {{tag: "pass"} | {tag: "fail" | "no-data", val: string}} */
const pass = () => ({ tag: "pass" });
const fail = (val) => ({ tag: "fail", val });
const noData = (val) => ({ tag: "no-data", val });

function p95(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(0.95 * sorted.length) - 1)];
}

/** One path: `samples` GETs; a check on status and one on p95 latency. */
function probe(base, path, cfg) {
  // A path is relative to the target's API; an absolute URL is taken as it is (and must be on
  // the stage's allow-list like any other).
  const url = /^https?:\/\//.test(path) ? path : base + path;
  const latencies = [];
  const statuses = [];
  for (let i = 0; i < cfg.samples; i++) {
    try {
      const res = send({ method: "get", url, headers: [], body: new Uint8Array(), timeoutMs: 5000, followRedirects: true });
      statuses.push(res.status);
      latencies.push(Number(res.elapsedUs) / 1000);
    } catch (e) {
      // The host's error variant: denied (not on the allow-list), timeout, connect...
      const why = e.payload ? `${e.payload.tag}: ${e.payload.val ?? ""}` : String(e);
      return [{ name: `${path} status`, verdict: noData(`${url}: ${why}`), observed: undefined, threshold: 200, unit: "", detail: why }];
    }
  }
  const bad = statuses.filter((s) => s !== 200);
  const status = {
    name: `${path} status`,
    verdict: bad.length ? fail(`${bad.length} of ${statuses.length} answered ${bad[0]}`) : pass(),
    observed: statuses.length - bad.length,
    threshold: statuses.length,
    unit: "ok",
    detail: url,
  };
  const worst = p95(latencies);
  const latency = {
    name: `${path} p95`,
    verdict: worst > cfg["max-p95-ms"] ? fail(`${worst.toFixed(1)} ms is above ${cfg["max-p95-ms"]} ms`) : pass(),
    observed: worst,
    threshold: cfg["max-p95-ms"],
    unit: "ms",
    detail: `${latencies.length} GETs`,
  };
  return [status, latency];
}

export const describe = {
  describe() {
    return {
      name: "api-latency",
      version: "0.1.0",
      role: "step",
      description: "API status and p95 latency of configured paths (JavaScript)",
      capabilities: ["log", "http"],
      configSchema: SCHEMA,
    };
  },
};

export const step = {
  run(context, configJson) {
    const cfg = { ...DEFAULTS, ...JSON.parse(configJson || "{}") };
    const base = context.target.apiBaseUrl || context.target.baseUrl;
    log("info", `api-latency: ${cfg.paths.length} path(s) x ${cfg.samples} on ${base}`);
    const checks = cfg.paths.flatMap((path) => probe(base, path, cfg));
    const failed = checks.find((c) => c.verdict.tag === "fail");
    const missing = checks.find((c) => c.verdict.tag === "no-data");
    const verdict = failed ? fail(`${failed.name}: ${failed.verdict.val}`) : missing ? noData(missing.verdict.val) : pass();
    const ok = checks.filter((c) => c.verdict.tag === "pass").length;
    return { verdict, checks, summary: `api-latency: ${ok}/${checks.length} checks passed on ${base}` };
  },
};
