//! Webhook delivery for notifications: a Slack-compatible incoming webhook (`{"text": ...}`)
//! or a generic JSON webhook (the whole message as JSON). Retried on transport errors, 429 and
//! 5xx with a doubling pause, all within one deadline. The URL is a secret: no error text
//! carries it.

use std::time::{Duration, Instant};

/// What a webhook expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Slack (and Mattermost, Rocket.Chat, Teams' Slack-compatible hooks): `{"text": "..."}`.
    Slack,
    /// The message as JSON, for a team's own receiver.
    Json,
}

#[derive(Debug, Clone)]
pub struct Webhook {
    url: String,
    pub format: Format,
}

/// How a delivery went.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub delivered: bool,
    pub attempts: u32,
    /// The last HTTP status answered, if any.
    pub status: Option<u16>,
    /// Why it was not delivered, without the URL.
    pub error: Option<String>,
    pub elapsed: Duration,
}

impl Webhook {
    pub fn new(url: String, format: Format) -> Webhook {
        Webhook { url, format }
    }

    /// Posts `text` (Slack) or `json` (generic), retrying up to `retries` more times while the
    /// deadline allows. Never fails: the outcome says what happened.
    pub async fn deliver(
        &self,
        client: &reqwest::Client,
        text: &str,
        json: &serde_json::Value,
        retries: u32,
        deadline: Duration,
    ) -> Delivery {
        let body = match self.format {
            Format::Slack => serde_json::json!({ "text": text }),
            Format::Json => json.clone(),
        };
        let started = Instant::now();
        let (mut attempts, mut status, mut error) = (0u32, None, None);
        let mut pause = Duration::from_millis(100);
        loop {
            let Some(left) = deadline
                .checked_sub(started.elapsed())
                .filter(|l| !l.is_zero())
            else {
                error = Some(format!(
                    "gave up after {} ({attempts} attempt(s)): {}",
                    humantime::format_duration(deadline),
                    error.unwrap_or_else(|| "no answer".into())
                ));
                break;
            };
            attempts += 1;
            let sent = client
                .post(&self.url)
                .json(&body)
                .timeout(left)
                .send()
                .await;
            let retry = match sent {
                Ok(resp) => {
                    let code = resp.status();
                    status = Some(code.as_u16());
                    if code.is_success() {
                        error = None;
                        return Delivery {
                            delivered: true,
                            attempts,
                            status,
                            error,
                            elapsed: started.elapsed(),
                        };
                    }
                    error = Some(format!("answered {code}"));
                    code.is_server_error() || code.as_u16() == 429
                }
                Err(e) => {
                    // reqwest names the URL in its errors; the URL is the secret.
                    error = Some(if e.is_timeout() {
                        "no answer in time".to_string()
                    } else {
                        e.without_url().to_string()
                    });
                    true
                }
            };
            if !retry || attempts > retries {
                break;
            }
            let left = deadline.saturating_sub(started.elapsed());
            tokio::time::sleep(pause.min(left)).await;
            pause = pause.saturating_mul(2).min(Duration::from_secs(5));
        }
        Delivery {
            delivered: false,
            attempts,
            status,
            error,
            elapsed: started.elapsed(),
        }
    }
}
