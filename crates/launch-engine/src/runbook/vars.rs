//! `${VAR}` in a runbook: the guide's `STAGING_URL`, `S3_BUCKET`, `CLOUDFRONT_DIST_ID`... taken
//! from the environment before the TOML is parsed, without letting a value change its shape.

use super::RunbookError;

/// Replaces `${NAME}` and `${NAME:-default}` outside comments; `$${` is a literal `${`. A
/// variable that is unset (and has no default) is an error at its line, naming it. Values may
/// not contain quotes, backslashes or newlines, so a variable cannot change the runbook's shape.
pub fn expand_vars(
    text: &str,
    source: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, RunbookError> {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let error = |message: String| RunbookError {
            source_name: source.to_string(),
            line: i + 1,
            message,
        };
        if line.trim_start().starts_with('#') {
            out.push_str(line);
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("${") {
            if rest[..at].ends_with('$') {
                out.push_str(&rest[..at - 1]);
                out.push_str("${");
                rest = &rest[at + 2..];
                continue;
            }
            out.push_str(&rest[..at]);
            let Some(end) = rest[at..].find('}') else {
                return Err(error("`${` without a closing `}`".into()));
            };
            let inner = &rest[at + 2..at + end];
            let (name, default) = match inner.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (inner, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(error(format!("`${{{inner}}}` is not a variable name")));
            }
            let value = match (lookup(name).filter(|v| !v.is_empty()), default) {
                (Some(v), _) => v,
                (None, Some(d)) => d.to_string(),
                (None, None) => {
                    return Err(error(format!(
                        "`${{{name}}}` is not set; export {name}=... (or write `${{{name}:-default}}`)"
                    )));
                }
            };
            if value.contains(['"', '\\', '\n', '\r']) {
                return Err(error(format!(
                    "`${{{name}}}` holds a quote, backslash or newline, which a runbook value cannot take"
                )));
            }
            out.push_str(&value);
            rest = &rest[at + end + 1..];
        }
        out.push_str(rest);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_expand_and_a_missing_one_names_its_line() {
        let vars = |n: &str| (n == "S3_BUCKET").then(|| "edgar-site".to_string());
        let text = "# ${IGNORED}\nstore = \"s3://${S3_BUCKET}/staging\"\nurl = \"${STAGING_URL:-http://localhost}\"\nraw = \"$${x}\"\n";
        let out = expand_vars(text, "launch.toml", vars).unwrap();
        assert_eq!(
            out,
            "# ${IGNORED}\nstore = \"s3://edgar-site/staging\"\nurl = \"http://localhost\"\nraw = \"${x}\"\n"
        );
        let e = expand_vars("a = 1\nurl = \"${PROD_URL}\"\n", "launch.toml", vars).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("export PROD_URL="), "{e}");
        let hostile = |_: &str| Some("x\"\n[launch]".to_string());
        assert!(expand_vars("u = \"${A}\"", "l", hostile).is_err());
    }
}
