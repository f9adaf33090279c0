"""Error-budget SLO gate, written in Python to show that a policy needs no Rust.

The gate passes while the service stays inside its availability objective (default 99 %) over
all windows, and the newest window does not burn the error budget faster than allowed.
Too little traffic is no-data, never a pass.
"""

import json

from wit_world import exports
from wit_world.imports import log
from wit_world.imports.types import (
    Capability, Check, PluginInfo, Role, Samples, StepReport,
    Verdict_Fail, Verdict_NoData, Verdict_Pass,
)

DEFAULTS = {"slo-target-pct": 99.0, "max-burn-rate": 2.0, "min-requests": 20}

SCHEMA = json.dumps({
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "slo-target-pct": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 100},
        "max-burn-rate": {"type": "number", "exclusiveMinimum": 0},
        "min-requests": {"type": "integer", "minimum": 1},
    },
})


def parse_config(config_json):
    cfg = dict(DEFAULTS)
    if config_json.strip():
        given = json.loads(config_json)
        unknown = set(given) - set(DEFAULTS)
        if unknown:
            raise ValueError(f"unknown field(s): {', '.join(sorted(unknown))}")
        cfg.update(given)
    if not 0 < cfg["slo-target-pct"] < 100:
        raise ValueError("slo-target-pct must be between 0 and 100")
    return cfg


def totals(windows):
    requests = sum(e.requests for w in windows for e in w.endpoints)
    errors = sum(e.errors for w in windows for e in w.endpoints)
    return requests, errors


class Describe(exports.Describe):
    def describe(self) -> PluginInfo:
        return PluginInfo(
            name="error-budget",
            version="0.1.0",
            role=Role.SLO_GATE,
            description="Availability objective and error-budget burn rate (Python)",
            capabilities=[Capability.LOG],
            config_schema=SCHEMA,
        )


class SloGate(exports.SloGate):
    def evaluate(self, samples: Samples, config_json: str) -> StepReport:
        try:
            cfg = parse_config(config_json)
        except (ValueError, json.JSONDecodeError) as e:
            reason = f"invalid config: {e}"
            return StepReport(verdict=Verdict_Fail(reason), checks=[], summary=reason)

        budget_pct = 100.0 - cfg["slo-target-pct"]
        min_requests = cfg["min-requests"]
        checks = []

        requests, errors = totals(samples.windows)
        if requests < min_requests:
            checks.append(Check("availability", Verdict_NoData(f"{requests} request(s), {min_requests} needed"),
                                None, cfg["slo-target-pct"], "%", f"{len(samples.windows)} window(s)"))
        else:
            availability = 100.0 * (requests - errors) / requests
            verdict = Verdict_Pass() if availability >= cfg["slo-target-pct"] else Verdict_Fail(
                f"{availability:.3f} % is below the {cfg['slo-target-pct']} % objective")
            checks.append(Check("availability", verdict, availability, cfg["slo-target-pct"], "%",
                                f"{requests - errors} of {requests} requests succeeded"))

        newest = samples.windows[-1:] if samples.windows else []
        n_requests, n_errors = totals(newest)
        if n_requests < min_requests:
            checks.append(Check("burn-rate", Verdict_NoData(f"{n_requests} request(s) in the newest window"),
                                None, cfg["max-burn-rate"], "x", "newest window"))
        else:
            burn = (100.0 * n_errors / n_requests) / budget_pct
            verdict = Verdict_Pass() if burn < cfg["max-burn-rate"] else Verdict_Fail(
                f"burning the error budget {burn:.2f}x faster than sustainable (limit {cfg['max-burn-rate']}x)")
            checks.append(Check("burn-rate", verdict, burn, cfg["max-burn-rate"], "x",
                                f"{n_errors} error(s) in {n_requests} requests, budget {budget_pct:.2f} %"))

        failed = [c for c in checks if isinstance(c.verdict, Verdict_Fail)]
        missing = [c for c in checks if isinstance(c.verdict, Verdict_NoData)]
        if failed:
            overall = Verdict_Fail(f"{failed[0].name}: {failed[0].verdict.value}")
        elif missing:
            overall = Verdict_NoData(f"{missing[0].name}: {missing[0].verdict.value}")
        else:
            overall = Verdict_Pass()
        passed = sum(isinstance(c.verdict, Verdict_Pass) for c in checks)
        log.log(log.Level.INFO, f"error budget: {passed}/{len(checks)} checks passed")
        print(f"error-budget evaluated {len(samples.windows)} window(s)")  # captured by the host
        return StepReport(verdict=overall, checks=checks,
                          summary=f"error budget: {passed}/{len(checks)} checks passed")
