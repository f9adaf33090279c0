//! Unleash (https://docs.getunleash.io): the flag is a feature of a project, and its share of
//! users is the `rollout` of a gradual-rollout (`flexibleRollout`) strategy in one Unleash
//! environment, moved through the Admin API with an admin token.
//!
//! Which strategy: the one titled `launch-host`, else the feature's only gradual rollout in
//! that environment; with none, launch-host adds one (titled `launch-host`, sticky on
//! `default`, grouped by the feature's name, so a user in at 10% stays in at 30%). Any other
//! active strategy would let users in whatever the rollout says, so a feature with one is
//! refused — before anything is written — rather than reported at a percentage it is not at.
//!
//! Order keeps exposure at or under what was asked: moving up writes the rollout first and
//! enables the environment after; a rollback with `on-rollback = "disable"` disables the
//! environment first (Unleash's kill switch: every SDK sees it off at its next refresh) and
//! then writes rollout 0, so enabling it again later starts from nobody.
//!
//! Fencing: none. The Admin API has no conditional update (no ETag, no version to compare),
//! so a runner that lost its lease could still write; the lease is what excludes it.

use anyhow::Context;
use serde_json::{Value, json};

use super::http::{body_capped, client, retried};
use super::{FlagFuture, FlagStore};

/// The title of the strategy launch-host moves.
pub const STRATEGY_TITLE: &str = "launch-host";

/// What a rollback (a move to 0%) does to the feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnRollback {
    /// Disable the feature in the environment, then set the rollout to 0.
    #[default]
    Disable,
    /// Set the rollout to 0 and leave the feature enabled.
    Zero,
}

/// Where the feature is, and how to reach it. Its `Debug` masks the token.
#[derive(Clone)]
pub struct UnleashConfig {
    /// The server, e.g. `https://unleash.example.com` (without `/api`).
    pub url: String,
    /// An admin API token (the runbook takes it from a secret-named variable).
    pub token: String,
    pub project: String,
    /// The Unleash environment, e.g. `production`.
    pub environment: String,
    pub on_rollback: OnRollback,
}

impl std::fmt::Debug for UnleashConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnleashConfig")
            .field("url", &self.url)
            .field("token", &"***")
            .field("project", &self.project)
            .field("environment", &self.environment)
            .field("on_rollback", &self.on_rollback)
            .finish()
    }
}

pub struct UnleashFlags {
    config: UnleashConfig,
    client: reqwest::Client,
}

impl UnleashFlags {
    pub fn new(config: UnleashConfig) -> anyhow::Result<UnleashFlags> {
        let base = reqwest::Url::parse(&config.url)
            .with_context(|| format!("unleash url `{}` is not a URL", config.url))?;
        anyhow::ensure!(
            matches!(base.scheme(), "http" | "https"),
            "unleash url `{}` is not http(s)",
            config.url
        );
        Ok(UnleashFlags {
            config,
            client: client()?,
        })
    }

    /// `{url}/api/admin/projects/{project}/features/{name}` then `rest`, each segment escaped.
    fn url(&self, name: &str, rest: &[&str]) -> String {
        let mut url = reqwest::Url::parse(&self.config.url).expect("checked by new");
        url.path_segments_mut()
            .expect("an http(s) URL has a path")
            .pop_if_empty()
            .extend(["api", "admin", "projects", &self.config.project])
            .extend(["features", name])
            .extend(rest);
        url.into()
    }

    fn env_url(&self, name: &str, rest: &[&str]) -> String {
        let mut parts = vec!["environments", self.config.environment.as_str()];
        parts.extend_from_slice(rest);
        self.url(name, &parts)
    }

    /// Sends one Admin API request; anything but a 2xx is an error with Unleash's message.
    async fn send(&self, req: reqwest::RequestBuilder, url: &str) -> anyhow::Result<Value> {
        let resp = req
            .header(reqwest::header::AUTHORIZATION, &self.config.token)
            .send()
            .await
            .with_context(|| format!("Unleash at {url}"))?;
        let status = resp.status();
        let body = body_capped(resp, url).await?;
        if !status.is_success() {
            let message = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v.get("message").and_then(Value::as_str).map(String::from))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(200).collect());
            let hint = match status.as_u16() {
                401 | 403 => " (the token must be an admin token that reaches this project)",
                _ => "",
            };
            anyhow::bail!("Unleash answered {status} to {url}: {message}{hint}");
        }
        Ok(if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body).with_context(|| format!("{url} did not answer JSON"))?
        })
    }

    /// The feature's state in the environment.
    async fn state(&self, name: &str) -> anyhow::Result<State> {
        let url = self.url(name, &[]);
        let feature = self.send(self.client.get(&url), &url).await?;
        State::read(&feature, &self.config.environment)
            .with_context(|| format!("feature {name} in Unleash project {}", self.config.project))
    }

    async fn set_once(&self, name: &str, percent: u8) -> anyhow::Result<()> {
        let state = self.state(name).await?;
        state.only_ours(name, &self.config.environment)?;
        let rollback = percent == 0 && self.config.on_rollback == OnRollback::Disable;
        if rollback && state.enabled {
            let off = self.env_url(name, &["off"]);
            self.send(self.client.post(&off), &off).await?;
        }
        match &state.ours {
            Some(s) if s.rollout == percent && !s.disabled => {}
            Some(s) => {
                let mut patch = vec![
                    json!({"op": "replace", "path": "/parameters/rollout", "value": percent.to_string()}),
                ];
                if s.disabled {
                    patch.push(json!({"op": "replace", "path": "/disabled", "value": false}));
                }
                let url = self.env_url(name, &["strategies", &s.id]);
                self.send(self.client.patch(&url).json(&patch), &url)
                    .await?;
            }
            None if rollback => {}
            None => {
                let url = self.env_url(name, &["strategies"]);
                let strategy = json!({
                    "name": "flexibleRollout",
                    "title": STRATEGY_TITLE,
                    "constraints": [],
                    "parameters": {"rollout": percent.to_string(), "stickiness": "default", "groupId": name},
                });
                self.send(self.client.post(&url).json(&strategy), &url)
                    .await?;
            }
        }
        if percent > 0 && !state.enabled {
            let on = self.env_url(name, &["on"]);
            self.send(self.client.post(&on), &on).await?;
        }
        Ok(())
    }
}

impl FlagStore for UnleashFlags {
    fn get<'a>(&'a self, name: &'a str) -> FlagFuture<'a, u8> {
        Box::pin(async move {
            let what = format!("reading {name} from {}", self.describe());
            let state = retried(&what, || self.state(name)).await?;
            state.only_ours(name, &self.config.environment)?;
            Ok(state.percent())
        })
    }

    fn set<'a>(&'a self, name: &'a str, percent: u8) -> FlagFuture<'a, ()> {
        Box::pin(async move {
            anyhow::ensure!(
                percent <= 100,
                "flag {name}: {percent}% is not a percentage"
            );
            // Each attempt reads the feature again, so a write that landed unacknowledged
            // (a strategy added, then a timeout) is found, not made twice.
            let what = format!("setting {name} to {percent}% in {}", self.describe());
            retried(&what, || self.set_once(name, percent)).await
        })
    }

    fn describe(&self) -> String {
        format!(
            "unleash:{} (project {}, environment {})",
            self.config.url, self.config.project, self.config.environment
        )
    }
}

/// A feature in one environment, as the Admin API answers it.
#[derive(Debug)]
struct State {
    enabled: bool,
    ours: Option<Strategy>,
    /// Other active strategies, by name and title.
    others: Vec<String>,
}

#[derive(Debug)]
struct Strategy {
    id: String,
    rollout: u8,
    disabled: bool,
}

impl State {
    fn read(feature: &Value, environment: &str) -> anyhow::Result<State> {
        let env = feature
            .get("environments")
            .and_then(Value::as_array)
            .and_then(|envs| {
                envs.iter()
                    .find(|e| e.get("name").and_then(Value::as_str) == Some(environment))
            })
            .with_context(|| format!("it has no environment `{environment}` in Unleash"))?;
        let enabled = env.get("enabled").and_then(Value::as_bool).unwrap_or(false);
        let strategies = env
            .get("strategies")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let str_of =
            |s: &Value, k: &str| s.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let rollouts: Vec<&Value> = strategies
            .iter()
            .filter(|s| str_of(s, "name") == "flexibleRollout")
            .collect();
        let ours = rollouts
            .iter()
            .find(|s| str_of(s, "title") == STRATEGY_TITLE)
            .or(if rollouts.len() == 1 {
                rollouts.first()
            } else {
                None
            })
            .copied();
        let others = strategies
            .iter()
            .filter(|s| ours.is_none_or(|o| !std::ptr::eq(*s, o)))
            .filter(|s| !s.get("disabled").and_then(Value::as_bool).unwrap_or(false))
            .map(|s| match str_of(s, "title") {
                t if t.is_empty() => str_of(s, "name"),
                t => format!("{} \"{t}\"", str_of(s, "name")),
            })
            .collect();
        let ours = ours
            .map(|s| {
                let rollout = s.get("parameters").and_then(|p| p.get("rollout"));
                let rollout = match rollout {
                    Some(Value::String(r)) => r.parse::<u8>().ok(),
                    Some(Value::Number(n)) => n.as_u64().and_then(|n| u8::try_from(n).ok()),
                    _ => None,
                }
                .filter(|r| *r <= 100)
                .with_context(|| format!("its gradual rollout has no rollout percentage: {s}"))?;
                Ok::<_, anyhow::Error>(Strategy {
                    id: str_of(s, "id"),
                    rollout,
                    disabled: s.get("disabled").and_then(Value::as_bool).unwrap_or(false),
                })
            })
            .transpose()?;
        Ok(State {
            enabled,
            ours,
            others,
        })
    }

    /// Refuses a feature whose other strategies would let users in regardless of the rollout.
    fn only_ours(&self, name: &str, environment: &str) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.others.is_empty(),
            "feature {name} has other active strategies in Unleash environment {environment} ({}), which let users in whatever its rollout; launch-host moves one gradual rollout: remove or disable them, or title the one to move `{STRATEGY_TITLE}`",
            self.others.join(", ")
        );
        Ok(())
    }

    /// The share of users who see the feature.
    fn percent(&self) -> u8 {
        match &self.ours {
            _ if !self.enabled => 0,
            Some(s) if s.disabled => 0,
            Some(s) => s.rollout,
            // Enabled without a strategy: Unleash serves it to everyone.
            None => 100,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feature(enabled: bool, strategies: Value) -> Value {
        json!({"environments": [
            {"name": "development", "enabled": true, "strategies": []},
            {"name": "production", "enabled": enabled, "strategies": strategies},
        ]})
    }

    #[test]
    fn the_share_is_the_rollout_when_enabled_and_nothing_else_lets_users_in() {
        let rollout = |r: Value, title: &str| {
            json!({"id": "s1", "name": "flexibleRollout", "title": title, "disabled": false,
                "parameters": {"rollout": r, "stickiness": "default", "groupId": "F"}})
        };
        let on = State::read(
            &feature(true, json!([rollout(json!("30"), "")])),
            "production",
        )
        .unwrap();
        assert_eq!((on.percent(), on.others.len()), (30, 0));
        let off = State::read(
            &feature(false, json!([rollout(json!(30), "")])),
            "production",
        )
        .unwrap();
        assert_eq!(off.percent(), 0);
        let bare = State::read(&feature(true, json!([])), "production").unwrap();
        assert_eq!(
            bare.percent(),
            100,
            "enabled without strategies is everyone"
        );
        let two = json!([rollout(json!("10"), "launch-host"), {"id": "s2", "name": "default", "disabled": false}]);
        let two = State::read(&feature(true, two), "production").unwrap();
        let e = two.only_ours("F", "production").unwrap_err().to_string();
        assert!(
            e.contains("other active strategies") && e.contains("default"),
            "{e}"
        );
        let ambiguous = json!([rollout(json!("10"), "a"), rollout(json!("20"), "b")]);
        let ambiguous = State::read(&feature(true, ambiguous), "production").unwrap();
        assert!(ambiguous.ours.is_none() && ambiguous.only_ours("F", "production").is_err());
        let e = State::read(&feature(true, json!([])), "staging")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no environment `staging`"), "{e}");
    }
}
