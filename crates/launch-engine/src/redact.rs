//! Secrets never reach a file or the console: the values of secret-looking environment
//! variables, the password of every `user:pass@` in a URL and the credentials after an
//! `Authorization:` are replaced by `***` in every text the host writes — journal records,
//! reports, UAT files, the lines it prints.
//!
//! A variable looks secret when its name contains PASSWORD, TOKEN, SECRET, KEY, CREDENTIAL or
//! WEBHOOK (a Slack webhook URL is a credential),
//! or one of the comma-separated words in `LAUNCH_HOST_SECRET_NAMES`. Values shorter than
//! four characters are left alone: they cannot be told apart from ordinary text.

use std::borrow::Cow;
use std::sync::OnceLock;

use regex::Regex;

/// What replaces a secret.
pub const MASK: &str = "***";

const SECRET_WORDS: [&str; 6] = [
    "PASSWORD",
    "TOKEN",
    "SECRET",
    "KEY",
    "CREDENTIAL",
    "WEBHOOK",
];
const MIN_SECRET_LEN: usize = 4;
/// Extra words that make a variable secret, comma-separated.
pub const NAMES_VAR: &str = "LAUNCH_HOST_SECRET_NAMES";

/// The secret values of an environment, longest first (so a secret containing another is
/// masked whole).
#[derive(Debug)]
pub struct Secrets {
    values: Vec<String>,
    /// What a line of JSON holds when it might need masking: a value as it appears inside a
    /// JSON string (escaped, without quotes), a `://` or an `authorization` in any case. One
    /// pattern, so a line is searched once for all of them (every journal record is).
    might: regex::bytes::Regex,
}

impl Secrets {
    /// The secrets among `vars`, judged by name.
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>, extra: &str) -> Secrets {
        let words: Vec<String> = SECRET_WORDS
            .iter()
            .map(|w| w.to_string())
            .chain(
                extra
                    .split(',')
                    .map(|w| w.trim().to_ascii_uppercase())
                    .filter(|w| !w.is_empty()),
            )
            .collect();
        let mut values: Vec<String> = vars
            .into_iter()
            .filter(|(name, value)| {
                let name = name.to_ascii_uppercase();
                value.len() >= MIN_SECRET_LEN && words.iter().any(|w| name.contains(w.as_str()))
            })
            .map(|(_, value)| value)
            .collect();
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values.dedup();
        let in_json = values.iter().map(|v| {
            let quoted = serde_json::to_string(v).unwrap_or_default();
            let inner = quoted.strip_prefix('"').and_then(|q| q.strip_suffix('"'));
            regex::escape(inner.unwrap_or(&quoted))
        });
        let pattern = in_json
            .chain(["://".to_string(), "(?i:authorization)".to_string()])
            .collect::<Vec<_>>()
            .join("|");
        let might = regex::bytes::RegexBuilder::new(&pattern)
            // Room above the default 10 MB for an environment holding many long secrets
            // (PEM keys): the pattern is built once per process.
            .size_limit(64 << 20)
            .build()
            .expect("escaped literals make a valid pattern");
        Secrets { values, might }
    }

    /// The secrets of this process's environment, read once.
    pub fn of_process() -> &'static Secrets {
        static SECRETS: OnceLock<Secrets> = OnceLock::new();
        SECRETS.get_or_init(|| {
            let extra = std::env::var(NAMES_VAR).unwrap_or_default();
            Secrets::from_vars(std::env::vars(), &extra)
        })
    }

    /// Whether serialized JSON might hold something to mask.
    fn might_be_in(&self, json: &[u8]) -> bool {
        self.might.is_match(json)
    }

    /// `text` with every secret masked.
    pub fn mask<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for v in &self.values {
            if out.contains(v.as_str()) {
                out = Cow::Owned(out.replace(v.as_str(), MASK));
            }
        }
        match userinfo(&out) {
            Cow::Borrowed(_) => out,
            Cow::Owned(s) => Cow::Owned(s),
        }
    }
}

/// `text` with the process's secrets, URL passwords and authorization credentials masked.
pub fn text(text: &str) -> Cow<'_, str> {
    Secrets::of_process().mask(text)
}

/// `value` as one line of JSON with every string masked. Most records hold nothing to mask:
/// they are written as they serialize, and only a line that might (a secret's value, as it
/// appears escaped in JSON, a `://` or an `authorization`) takes the masking path.
pub fn json_line<T: serde::Serialize>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut line = Vec::with_capacity(256);
    json_line_into(&mut line, value)?;
    Ok(line)
}

/// `json_line`, written at the end of `out` (on an error, `out` may hold part of it).
pub fn json_line_into<T: serde::Serialize>(out: &mut Vec<u8>, value: &T) -> serde_json::Result<()> {
    let start = out.len();
    serde_json::to_writer(&mut *out, value)?;
    if !Secrets::of_process().might_be_in(&out[start..]) {
        return Ok(());
    }
    out.truncate(start);
    let mut value = serde_json::to_value(value)?;
    json(&mut value);
    serde_json::to_writer(out, &value)
}

/// Masks every string inside a JSON value, in place.
pub fn json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) => {
            if let Cow::Owned(masked) = text(s) {
                *s = masked;
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(json),
        serde_json::Value::Object(map) => map.values_mut().for_each(json),
        _ => {}
    }
}

/// `text` with the password of every `user:pass@host` and the credentials after every
/// `Authorization:` masked; the user name stays, so the reader still knows which account.
pub fn userinfo(text: &str) -> Cow<'_, str> {
    static USERINFO: OnceLock<Regex> = OnceLock::new();
    static AUTHORIZATION: OnceLock<Regex> = OnceLock::new();
    // scheme://user:password@ — the scheme is required: `launch:plugin@0.1.0` is a WIT
    // package, not a login.
    let userinfo = USERINFO.get_or_init(|| {
        Regex::new(r#"(?P<user>[A-Za-z][A-Za-z0-9+.-]*://[A-Za-z0-9._~%!$&'()*+,;=-]*):(?P<pass>[^\s/@"'<>`]+)@"#)
            .expect("a valid pattern")
    });
    let authorization = AUTHORIZATION.get_or_init(|| {
        Regex::new(r#"(?i)(?P<head>(?:proxy-)?authorization\s*[:=]\s*"?)(?P<scheme>(?:basic|bearer|token|digest)\s+)?[^\s"',;]+"#)
            .expect("a valid pattern")
    });
    // Most text has neither; the cheap tests keep the journal's hot path free of regexes.
    let once = if text.contains("://") {
        userinfo.replace_all(text, "${user}:***@")
    } else {
        Cow::Borrowed(text)
    };
    let named = |w: &[u8]| w.eq_ignore_ascii_case(b"authorization");
    if !once.as_bytes().windows(13).any(named) {
        return once;
    }
    match authorization.replace_all(&once, "${head}${scheme}***") {
        Cow::Borrowed(_) => once,
        Cow::Owned(s) => Cow::Owned(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> Secrets {
        let vars = [
            ("DB_PASSWORD", "hunter2-very-secret"),
            ("SLACK_TOKEN", "xoxb-123"),
            ("API_KEY", "abc"),
            ("HOME", "/root"),
            ("DSN_VALUE", "postgres-dsn-xyz"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        Secrets::from_vars(vars, "dsn")
    }

    #[test]
    fn secret_looking_variables_are_masked() {
        let s = secrets();
        assert_eq!(
            s.mask("deploy hunter2-very-secret with xoxb-123 from /root; postgres-dsn-xyz"),
            "deploy *** with *** from /root; ***"
        );
        // Too short to mask without masking ordinary words.
        assert_eq!(s.mask("abc"), "abc");
    }

    #[test]
    fn a_line_with_nothing_to_mask_is_told_apart_from_one_that_might_hold_a_secret() {
        let vars = [("API_TOKEN", "to\"ken\\value")].map(|(k, v)| (k.to_string(), v.to_string()));
        let s = Secrets::from_vars(vars, "");
        let line = |v: serde_json::Value| serde_json::to_vec(&v).unwrap();
        assert!(!s.might_be_in(&line(serde_json::json!({"stage": "canary", "percent": 30}))));
        // The secret is found escaped as JSON writes it.
        assert!(s.might_be_in(&line(serde_json::json!({"reason": "sent to\"ken\\value"}))));
        assert!(s.might_be_in(&line(serde_json::json!({"url": "https://a:b@h"}))));
        assert!(s.might_be_in(&line(serde_json::json!({"h": "AUTHORIZATION: x"}))));
        assert!(s.might_be_in(&line(serde_json::json!({"h": "proxy-Authorization"}))));
        // A secret is a literal, whatever it holds: pattern characters match only themselves.
        let vars = [("DB_PASSWORD", "p@ss.w*rd(1)|x")].map(|(k, v)| (k.to_string(), v.to_string()));
        let s = Secrets::from_vars(vars, "");
        assert!(s.might_be_in(&line(serde_json::json!({"r": "with p@ss.w*rd(1)|x"}))));
        assert!(!s.might_be_in(&line(serde_json::json!({"r": "with p@ssXw*rd(1)|x"}))));
        assert!(!s.might_be_in(&line(serde_json::json!({"r": "x"}))));
        // No secrets at all: only the URL and the header words remain.
        let s = Secrets::from_vars(Vec::new(), "");
        assert!(!s.might_be_in(b"{\"stage\":\"canary\"}"));
        assert!(s.might_be_in(b"{\"u\":\"http://h\"}"));
    }

    #[test]
    fn url_passwords_and_authorization_are_masked() {
        assert_eq!(
            userinfo("fetch https://deploy:s3cr3t@example.com/x and ftp://a:b@h"),
            "fetch https://deploy:***@example.com/x and ftp://a:***@h"
        );
        // Not a login: a WIT package, and `a:b@c` without a scheme.
        assert_eq!(
            userinfo("built against launch:plugin@0.1.x"),
            "built against launch:plugin@0.1.x"
        );
        assert_eq!(
            userinfo("Authorization: Bearer eyJhbGci.x.y sent"),
            "Authorization: Bearer *** sent"
        );
        assert_eq!(userinfo("authorization=abc123"), "authorization=***");
        // Mail addresses and ports are not credentials.
        assert_eq!(
            userinfo("mail ops@example.com at 127.0.0.1:8080"),
            "mail ops@example.com at 127.0.0.1:8080"
        );
    }

    #[test]
    fn json_strings_are_masked_in_place() {
        let mut v = serde_json::json!({"a": ["https://u:p4ss@h"], "n": 3});
        json(&mut v);
        assert_eq!(v, serde_json::json!({"a": ["https://u:***@h"], "n": 3}));
    }

    #[test]
    fn a_calls_rendered_inputs_are_masked_in_its_journal_line() {
        // Inline inputs are written as rendered, not as a value: the line is masked all the same.
        let rendered = serde_json::value::to_raw_value(&serde_json::json!({
            "target": {"base-url": "https://ana:hunter2@staging.example"}
        }))
        .unwrap();
        let record = crate::journal::Record::new(crate::journal::Event::Call {
            stage: "smoke".into(),
            plugin: "p".into(),
            input: String::new(),
            inputs: Some(crate::journal::Inputs::Rendered(rendered)),
            windows: Vec::new(),
            history_from: None,
            history_len: 0,
            answer: "pass".into(),
            reason: None,
            checks: Default::default(),
        });
        let line = String::from_utf8(json_line(&record).unwrap()).unwrap();
        assert!(!line.contains("hunter2"), "{line}");
        assert!(
            line.contains(r#""inputs":{"target":{"base-url":"https://ana:***@staging.example"}}"#),
            "{line}"
        );
        // And it reads back as the value it was.
        let read: crate::journal::Record = serde_json::from_str(&line).unwrap();
        let crate::journal::Event::Call {
            inputs: Some(inputs),
            ..
        } = read.event
        else {
            panic!("{line}")
        };
        assert_eq!(
            inputs.to_value().unwrap(),
            serde_json::json!({"target": {"base-url": "https://ana:***@staging.example"}})
        );
    }
}
