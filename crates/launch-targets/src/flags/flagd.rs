//! A flag in a flagd flag definition (https://flagd.dev/schema/v0/flags.json): a boolean flag
//! whose share of users is a `fractional` targeting rule,
//!
//! ```json
//! "STATUS_BOARD_V2_ENABLED": {
//!   "state": "ENABLED",
//!   "variants": { "on": true, "off": false },
//!   "defaultVariant": "off",
//!   "targeting": { "fractional": [ ["on", 30], ["off", 70] ] }
//! }
//! ```
//!
//! The true variant is listed first: flagd hashes each user to a point in [0, 100) and gives
//! them the variant whose cumulative weight covers it, so growing the first weight only adds
//! users — everyone in the canary at 10% is still in it at 30%. The flag's own variant names
//! and a bucketing expression the team wrote (`fractional`'s first element) are kept, as is
//! every other flag, `$evaluators` and `metadata` in the document.

use anyhow::Context;
use serde_json::{Map, Value, json};

const SCHEMA: &str = "https://flagd.dev/schema/v0/flags.json";

/// The flag's share of users in `doc`: 0 when it is absent or DISABLED, the true variant's
/// weight in its `fractional` rule, or the default variant's value without targeting.
pub fn percent(doc: &Value, name: &str) -> anyhow::Result<u8> {
    let Some(flag) = doc.get("flags").and_then(|f| f.get(name)) else {
        return Ok(0);
    };
    if flag.get("state").and_then(Value::as_str) == Some("DISABLED") {
        return Ok(0);
    }
    let (on, _) = boolean_variants(flag)?;
    let targeting = flag.get("targeting").filter(|t| !is_empty_object(t));
    let Some(targeting) = targeting else {
        let default = flag.get("defaultVariant").and_then(Value::as_str);
        return Ok(if default == Some(on.as_str()) { 100 } else { 0 });
    };
    let rule = fractional(targeting)?;
    let (mut ours, mut total) = (0u64, 0u64);
    for (variant, weight) in weights(rule)? {
        total += weight;
        if variant == on {
            ours += weight;
        }
    }
    anyhow::ensure!(total > 0, "its fractional weights are all 0");
    // Weights launch-host writes sum to 100; a team's own may not, so scale (rounded).
    Ok(((ours * 100 + total / 2) / total) as u8)
}

/// `doc` (or a new definition) with the flag split `percent` / `100 - percent`.
pub fn with_percent(doc: Option<Value>, name: &str, percent: u8) -> anyhow::Result<Value> {
    let mut doc = doc.unwrap_or_else(|| json!({ "$schema": SCHEMA, "flags": {} }));
    let root = doc
        .as_object_mut()
        .context("a flagd definition is a JSON object")?;
    let flags = root
        .entry("flags")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .context("its `flags` is not an object (launch-host writes the object form)")?;
    let flag = flags.entry(name).or_insert_with(|| {
        json!({
            "state": "ENABLED",
            "variants": { "on": true, "off": false },
            "defaultVariant": "off",
        })
    });
    let (on, off) = boolean_variants(flag)?;
    let bucket_by = flag
        .get("targeting")
        .filter(|t| !is_empty_object(t))
        .map(fractional)
        .transpose()?
        .and_then(|rule| rule.first().filter(|first| !first.is_array()).cloned());
    let mut rule: Vec<Value> = bucket_by.into_iter().collect();
    rule.push(json!([on, percent]));
    rule.push(json!([off, 100 - percent]));
    let flag = flag.as_object_mut().context("the flag is not an object")?;
    flag.insert("state".into(), json!("ENABLED"));
    flag.insert("targeting".into(), json!({ "fractional": rule }));
    Ok(doc)
}

/// The names of the flag's true and false variants: launch-host moves boolean flags only.
fn boolean_variants(flag: &Value) -> anyhow::Result<(String, String)> {
    let variants = flag
        .get("variants")
        .and_then(Value::as_object)
        .context("the flag has no `variants` object")?;
    let named = |want: bool| {
        variants
            .iter()
            .find(|(_, v)| v.as_bool() == Some(want))
            .map(|(k, _)| k.clone())
    };
    match (named(true), named(false)) {
        (Some(on), Some(off)) if variants.values().all(Value::is_boolean) => Ok((on, off)),
        _ => anyhow::bail!(
            "the flag is not a boolean flag with a true and a false variant (its variants: {}); launch-host moves the share of users who see a feature",
            Value::Object(variants.clone())
        ),
    }
}

/// The arguments of a targeting rule that is one `fractional` operation, and nothing else.
fn fractional(targeting: &Value) -> anyhow::Result<&Vec<Value>> {
    let only = targeting
        .as_object()
        .filter(|t| t.len() == 1)
        .and_then(|t| t.get("fractional"))
        .and_then(Value::as_array);
    only.with_context(|| {
        format!(
            "its targeting is not a single `fractional` rule ({targeting}); launch-host owns this flag's split, so move other rules to another flag"
        )
    })
}

/// `[variant, weight]` pairs of a fractional rule (its bucketing expression skipped).
fn weights(rule: &[Value]) -> anyhow::Result<Vec<(String, u64)>> {
    rule.iter()
        .filter(|arg| arg.is_array())
        .map(|arg| {
            let pair = arg.as_array().expect("filtered to arrays");
            let variant = pair.first().and_then(Value::as_str);
            // flagd's shorthand `["on"]` weighs 1.
            let weight = match pair.get(1) {
                None => Some(1),
                Some(w) => w.as_u64(),
            };
            match (variant, weight) {
                (Some(v), Some(w)) => Ok((v.to_string(), w)),
                _ => anyhow::bail!(
                    "fractional entry {arg} is not [variant, whole-number weight] (a computed weight cannot be read back)"
                ),
            }
        })
        .collect()
}

fn is_empty_object(v: &Value) -> bool {
    v.as_object().is_some_and(Map::is_empty)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLAG: &str = "STATUS_BOARD_V2_ENABLED";

    #[test]
    fn a_new_definition_splits_the_flag_and_reads_back() {
        let doc = with_percent(None, FLAG, 30).unwrap();
        assert_eq!(doc["$schema"], SCHEMA);
        assert_eq!(
            doc["flags"][FLAG]["targeting"],
            json!({"fractional": [["on", 30], ["off", 70]]})
        );
        assert_eq!(percent(&doc, FLAG).unwrap(), 30);
        let off = with_percent(Some(doc), FLAG, 0).unwrap();
        assert_eq!(percent(&off, FLAG).unwrap(), 0);
        assert_eq!(percent(&off, "ABSENT").unwrap(), 0);
    }

    #[test]
    fn the_teams_variant_names_bucketing_and_other_flags_are_kept() {
        let doc = json!({
            "flags": {
                FLAG: {
                    "state": "DISABLED",
                    "variants": {"new": true, "old": false},
                    "defaultVariant": "old",
                    "metadata": {"owner": "board-team"},
                    "targeting": {"fractional": [{"var": "email"}, ["new", 1], ["old", 3]]}
                },
                "COLOR": {"state": "ENABLED", "variants": {"red": "r"}, "defaultVariant": "red"}
            },
            "$evaluators": {"staff": {"in": ["@example.com", {"var": "email"}]}}
        });
        assert_eq!(percent(&doc, FLAG).unwrap(), 0, "DISABLED is off");
        let moved = with_percent(Some(doc.clone()), FLAG, 50).unwrap();
        let flag = &moved["flags"][FLAG];
        assert_eq!(flag["state"], "ENABLED");
        assert_eq!(
            flag["targeting"]["fractional"],
            json!([{"var": "email"}, ["new", 50], ["old", 50]])
        );
        assert_eq!(flag["metadata"], doc["flags"][FLAG]["metadata"]);
        assert_eq!(moved["flags"]["COLOR"], doc["flags"]["COLOR"]);
        assert_eq!(moved["$evaluators"], doc["$evaluators"]);
        assert_eq!(percent(&moved, FLAG).unwrap(), 50);
    }

    #[test]
    fn a_flag_it_cannot_read_is_an_error_not_a_percentage() {
        let weights = json!({"flags": {FLAG: {"variants": {"on": true, "off": false},
            "defaultVariant": "off", "targeting": {"fractional": [["on", 1], ["off", 3]]}}}});
        assert_eq!(percent(&weights, FLAG).unwrap(), 25, "scaled to 100");
        let rule = json!({"flags": {FLAG: {"variants": {"on": true, "off": false},
            "defaultVariant": "off", "targeting": {"if": [true, "on", "off"]}}}});
        let e = percent(&rule, FLAG).unwrap_err().to_string();
        assert!(e.contains("not a single `fractional` rule"), "{e}");
        assert!(
            with_percent(Some(rule), FLAG, 10).is_err(),
            "never overwritten"
        );
        let strings =
            json!({"flags": {FLAG: {"variants": {"a": "x", "b": "y"}, "defaultVariant": "a"}}});
        let e = with_percent(Some(strings), FLAG, 10)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a boolean flag"), "{e}");
        let computed = json!({"flags": {FLAG: {"variants": {"on": true, "off": false},
            "defaultVariant": "off", "targeting": {"fractional": [["on", {"var": "w"}], ["off", 50]]}}}});
        assert!(percent(&computed, FLAG).is_err());
        let default_on = json!({"flags": {FLAG: {"variants": {"on": true, "off": false}, "defaultVariant": "on"}}});
        assert_eq!(percent(&default_on, FLAG).unwrap(), 100);
    }
}
