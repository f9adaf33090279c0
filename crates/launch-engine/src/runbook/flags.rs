//! Where an environment's flags are moved (`flags = ...`) and each provider's own table: read
//! once into a typed `FlagProvider`, checked at its line.
//!
//! ```toml
//! [environments.production]
//! flags = "unleash"
//! [environments.production.unleash]
//! url = "https://unleash.example.com"
//! token = "${UNLEASH_ADMIN_TOKEN}"
//! project = "default"          # [default: default]
//! environment = "production"   # the Unleash environment [default: this one's name]
//! on-rollback = "disable"      # or "zero" [default: disable]
//!
//! [environments.staging]
//! flags = "flagd"
//! [environments.staging.flagd]
//! file = "/etc/flagd/flags.json"   # or: object = "s3://bucket/flagd/flags.json"
//! ```

use serde::Deserialize;
use toml::Spanned;

use super::{Environment, Runbook, RunbookError};
use launch_targets::flags::OnRollback;

/// `[environments.NAME.unleash]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct UnleashSpec {
    /// The server, without `/api`.
    pub url: Spanned<String>,
    /// An admin API token, as `${VAR}` with a secret-named variable.
    pub token: Spanned<String>,
    #[serde(default = "default_project")]
    pub project: String,
    /// The Unleash environment [default: the launch-host environment's name].
    pub environment: Option<String>,
    #[serde(default)]
    pub on_rollback: OnRollback,
}

fn default_project() -> String {
    "default".into()
}

/// `[environments.NAME.flagd]`: the flag definition flagd syncs, a file or an S3 object.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FlagdSpec {
    /// An absolute path: flagd's file sync watches one place on the machine, wherever the
    /// runbook is read from (a resumed run reads its copy in the run folder).
    pub file: Option<Spanned<String>>,
    /// `s3://bucket/key.json`.
    pub object: Option<Spanned<String>>,
}

/// An environment's flag provider, typed.
#[derive(Debug, Clone, Copy)]
pub enum FlagProvider<'a> {
    /// The run folder's `flags.json` [default].
    File,
    /// The target's `/api/admin/feature-flags`.
    Http,
    /// A JSON object of percentages in S3.
    S3(&'a str),
    /// A flagd definition in a file on this machine.
    FlagdFile(&'a str),
    /// A flagd definition in S3.
    FlagdObject(&'a str),
    Unleash(&'a UnleashSpec),
}

impl Environment {
    /// The provider, as checked by `validate` (`None`: a spec `check_flags` refuses).
    pub fn flag_provider(&self) -> Option<FlagProvider<'_>> {
        Some(match self.flags_spec() {
            None | Some("file") => FlagProvider::File,
            Some("http") => FlagProvider::Http,
            Some(url) if url.starts_with("s3://") => FlagProvider::S3(url),
            Some("unleash") => FlagProvider::Unleash(self.unleash.as_ref()?.get_ref()),
            Some("flagd") => {
                let spec = self.flagd.as_ref()?.get_ref();
                match (&spec.file, &spec.object) {
                    (Some(f), None) => FlagProvider::FlagdFile(f.get_ref()),
                    (None, Some(o)) => FlagProvider::FlagdObject(o.get_ref()),
                    _ => return None,
                }
            }
            Some(_) => return None,
        })
    }
}

impl Runbook {
    /// `flags` names a provider, its table is there and complete, and nothing else is set.
    pub(super) fn check_flags(&self, name: &str, env: &Environment) -> Result<(), RunbookError> {
        let at = env.flags.as_ref().map_or(0, |f| f.span().start);
        let spec = env.flags_spec();
        let known = matches!(spec, None | Some("file" | "http" | "unleash" | "flagd"))
            || spec.is_some_and(|s| s.starts_with("s3://"));
        if !known {
            return Err(self.error_at(
                at,
                format!(
                    "environment `{name}`: unknown flag provider `{}` (expected \"file\", \"http\", \"unleash\", \"flagd\" or an s3://bucket/flags.json URL)",
                    spec.unwrap_or_default()
                ),
            ));
        }
        // A provider's table without `flags` naming it is a mistake, not a default.
        for (table, key, at_table) in [
            (
                "unleash",
                "unleash",
                env.unleash.as_ref().map(|t| t.span().start),
            ),
            ("flagd", "flagd", env.flagd.as_ref().map(|t| t.span().start)),
        ] {
            if let Some(t) = at_table
                && spec != Some(key)
            {
                return Err(self.error_at(
                    t,
                    format!("environment `{name}`: a [{table}] table is set but flags is not \"{key}\"; add flags = \"{key}\""),
                ));
            }
        }
        if matches!(spec, Some("unleash" | "flagd")) && env.is_embedded() {
            return Err(self.error_at(
                at,
                format!("environment `{name}`: an embedded target follows its own flag file; {} moves a real service's flag, so point `url` at the site that reads it", spec.unwrap_or_default()),
            ));
        }
        match spec {
            Some("unleash") => self.check_unleash(name, env, at),
            Some("flagd") => self.check_flagd(name, env, at),
            _ => Ok(()),
        }
    }

    fn check_unleash(&self, name: &str, env: &Environment, at: usize) -> Result<(), RunbookError> {
        let Some(spec) = &env.unleash else {
            return Err(self.error_at(
                at,
                format!("environment `{name}`: flags = \"unleash\" needs its server and token: add [environments.{name}.unleash] with url = \"https://unleash.example.com\" and token = \"${{UNLEASH_ADMIN_TOKEN}}\""),
            ));
        };
        let spec = spec.get_ref();
        let url = reqwest::Url::parse(spec.url.get_ref());
        if !url.is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
            return Err(self.error_at(
                spec.url.span().start,
                format!(
                    "environment `{name}`: unleash url `{}` is not an http(s) URL",
                    spec.url.get_ref()
                ),
            ));
        }
        let token = spec.token.get_ref();
        if token.trim().is_empty() || crate::redact::text(token) == token.as_str() {
            return Err(self.error_at(
                spec.token.span().start,
                format!(
                    "environment `{name}`: an Unleash admin token is a secret; write it as token = \"${{UNLEASH_ADMIN_TOKEN}}\" (a variable whose name says TOKEN or SECRET), or list the variable in {}",
                    crate::redact::NAMES_VAR
                ),
            ));
        }
        Ok(())
    }

    fn check_flagd(&self, name: &str, env: &Environment, at: usize) -> Result<(), RunbookError> {
        let example = format!(
            "[environments.{name}.flagd] with file = \"/etc/flagd/flags.json\" or object = \"s3://bucket/flagd/flags.json\""
        );
        let Some(spec) = &env.flagd else {
            return Err(self.error_at(
                at,
                format!(
                    "environment `{name}`: flags = \"flagd\" needs its definition: add {example}"
                ),
            ));
        };
        let at = spec.span().start;
        match (&spec.get_ref().file, &spec.get_ref().object) {
            (Some(file), None) if !std::path::Path::new(file.get_ref()).is_absolute() => {
                Err(self.error_at(
                    file.span().start,
                    format!("environment `{name}`: flagd file `{}` is not an absolute path; write the path flagd syncs, e.g. /etc/flagd/flags.json", file.get_ref()),
                ))
            }
            (None, Some(object)) if !object.get_ref().starts_with("s3://") => Err(self.error_at(
                object.span().start,
                format!("environment `{name}`: flagd object `{}` is not an s3:// URL", object.get_ref()),
            )),
            (Some(_), None) | (None, Some(_)) => Ok(()),
            _ => Err(self.error_at(
                at,
                format!("environment `{name}`: give the flagd definition exactly one place: {example}"),
            )),
        }
    }
}
