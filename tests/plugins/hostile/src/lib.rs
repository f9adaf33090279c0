//! A `step` plugin that attacks its sandbox in the way its config asks: loop forever, eat
//! memory, panic, reach hosts it was not granted (through `http` and through `wasi:http`),
//! snoop on the environment and file system, flood stdout, or return an enormous report.

wit_bindgen::generate!({
    path: "../../../wit",
    world: "step-plugin",
    with: {
        "launch:plugin/types@0.1.0": launch_plugin_sdk::types,
        "launch:plugin/log@0.1.0": launch_plugin_sdk::log,
        "launch:plugin/http@0.1.0": launch_plugin_sdk::http,
    },
});

use exports::launch::plugin::describe;
use exports::launch::plugin::step::{self, StepContext};
use launch_plugin_sdk::{self as sdk, http, types::*};

struct Plugin;

impl describe::Guest for Plugin {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "hostile".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            role: Role::Step,
            description: "Misbehaves on purpose (tests only)".into(),
            capabilities: vec![Capability::Log, Capability::Http],
            config_schema: None,
        }
    }
}

/// The config is `<attack>` or `<attack> <argument>` (or `{"attack":"<attack>"}` from a
/// runbook); plain text keeps this plugin free of a JSON dependency.
impl step::Guest for Plugin {
    fn run(_context: StepContext, config: String) -> StepReport {
        // From a runbook the config arrives as JSON: `{"attack":"panic"}`.
        let config = match config.split('"').collect::<Vec<_>>().as_slice() {
            [_, "attack", _, attack, ..] => attack.to_string(),
            _ => config,
        };
        let (attack, arg) = config.split_once(' ').unwrap_or((config.as_str(), ""));
        match attack {
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "oom" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "panic" => panic!("hostile plugin panicked on purpose"),
            "http" => {
                let verdict = match http::send(&sdk::get(arg)) {
                    Ok(r) => Verdict::Pass.then_detail(format!("status {}", r.status)),
                    Err(e) => Verdict::Fail(sdk::describe_error(&e)),
                };
                one(verdict)
            }
            "wasi-http" => one(match wasi_http_get(arg) {
                Ok(status) => Verdict::Pass.then_detail(format!("status {status}")),
                Err(e) => Verdict::Fail(e),
            }),
            "snoop" => {
                let mut found = Vec::new();
                found.extend(std::env::vars().map(|(k, v)| format!("env {k}={v}")));
                found.extend(std::env::args().map(|a| format!("arg {a}")));
                for path in ["/etc/passwd", "/proc/self/environ", ".", "/", "/tmp"] {
                    if std::fs::metadata(path).is_ok() {
                        found.push(format!("file {path}"));
                    }
                }
                if let Ok(entries) = std::fs::read_dir("/") {
                    found.extend(entries.flatten().map(|e| format!("dir entry {}", e.path().display())));
                }
                if std::net::TcpStream::connect("127.0.0.1:1").is_ok() {
                    found.push("socket 127.0.0.1:1".into());
                }
                StepReport { verdict: Verdict::Pass, checks: Vec::new(), summary: found.join("\n") }
            }
            "flood-stdout" => {
                let line = "x".repeat(1023);
                for _ in 0..(64 * 1024) {
                    println!("{line}");
                }
                eprintln!("flooded");
                one(Verdict::Pass)
            }
            "huge" => {
                let big = "A".repeat(arg.parse().unwrap_or(16 << 20));
                let checks = (0..100_000)
                    .map(|i| sdk::check(&format!("c{i}"), Verdict::Pass, "x"))
                    .collect();
                StepReport { verdict: Verdict::Pass, checks, summary: big }
            }
            other => one(Verdict::Fail(format!("unknown attack `{other}`"))),
        }
    }
}

trait ThenDetail {
    fn then_detail(self, detail: String) -> Verdict;
}

impl ThenDetail for Verdict {
    /// Keeps the detail in the reason channel so tests can read what came back.
    fn then_detail(self, detail: String) -> Verdict {
        match self {
            Verdict::Pass => Verdict::Inconclusive(detail),
            v => v,
        }
    }
}

fn one(verdict: Verdict) -> StepReport {
    let summary = format!("{verdict:?}");
    StepReport { verdict, checks: Vec::new(), summary }
}

/// GET `http://AUTHORITY/PATH` through `wasi:http/outgoing-handler`, as JavaScript `fetch` would.
fn wasi_http_get(url: &str) -> Result<u16, String> {
    use wasip2::http::outgoing_handler;
    use wasip2::http::types::{Fields, OutgoingRequest, Scheme};
    let rest = url.strip_prefix("http://").ok_or("only http:// URLs")?;
    let (authority, path) = rest.split_once('/').map_or((rest, "/".to_string()), |(a, p)| (a, format!("/{p}")));
    let req = OutgoingRequest::new(Fields::new());
    req.set_scheme(Some(&Scheme::Http)).map_err(|_| "scheme")?;
    req.set_authority(Some(authority)).map_err(|_| "authority")?;
    req.set_path_with_query(Some(&path)).map_err(|_| "path")?;
    let pending = outgoing_handler::handle(req, None).map_err(|e| format!("handle: {e:?}"))?;
    pending.subscribe().block();
    match pending.get() {
        Some(Ok(Ok(resp))) => Ok(resp.status()),
        Some(Ok(Err(e))) => Err(format!("wasi:http error: {e:?}")),
        Some(Err(())) => Err("response already taken".into()),
        None => Err("no response".into()),
    }
}

export!(Plugin);
