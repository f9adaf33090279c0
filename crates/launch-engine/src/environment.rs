//! A runbook environment made concrete for one run: its artifact store, its flag store and the
//! URLs of its target — for an embedded environment, a StatusBoardV2 simulator on loopback
//! whose store and flags live in the run folder (so `resume` finds them again).

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

use super::runbook::{Environment, FlagProvider, Metrics, Runbook};
use launch_targets::cloudfront::CloudFront;
use launch_targets::flags::unleash::UnleashConfig;
use launch_targets::flags::{Document, FlagStore, HttpFlags, LocalFlags, S3Flags, UnleashFlags};
use launch_targets::metrics::{Prometheus, Signals, Source, Sources};
use launch_targets::probe::statusboard_endpoints;
use launch_targets::s3::S3Store;
use launch_targets::simulator::{Inject, Simulator, SimulatorConfig, site};
use launch_targets::store::{ArtifactStore, LocalStore};

pub struct Env {
    pub name: String,
    pub store: Arc<dyn ArtifactStore>,
    pub flags: Arc<dyn FlagStore>,
    pub url: String,
    pub api_url: String,
    /// The CDN in front of the site, when there is one.
    pub cdn: Option<Arc<CloudFront>>,
    /// Where its windows come from: the probe, Prometheus, or both.
    pub sources: Sources,
    /// How long a run waits for the Prometheus source to answer before its first effect.
    ready_within: std::time::Duration,
    _simulator: Option<Simulator>,
}

impl Env {
    /// The launch's flags (the primary, then its components) as the provider reads them now.
    pub async fn launch_flags(
        &self,
        runbook: &Runbook,
    ) -> anyhow::Result<std::collections::BTreeMap<String, u8>> {
        let mut flags = std::collections::BTreeMap::new();
        let names = std::iter::once(&runbook.launch.flag).chain(&runbook.launch.component_flags);
        for name in names {
            flags.insert(name.clone(), self.flags.get(name).await?);
        }
        Ok(flags)
    }

    /// The target's health endpoint, as the guide's scripts probe it.
    pub fn health_url(&self) -> String {
        format!("{}/api/health", self.api_url)
    }

    /// `GET` the health endpoint once: its status code, or why nothing answered.
    pub async fn health(&self) -> Result<u16, String> {
        reqwest::Client::new()
            .get(self.health_url())
            .timeout(std::time::Duration::from_secs(5))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .map_err(|e| e.to_string())
    }

    /// Starts measuring the environment: one window per `interval` from every source.
    pub fn signals(
        &self,
        client: reqwest::Client,
        interval: std::time::Duration,
        keep_raw: bool,
    ) -> Signals {
        Signals::start(
            &self.sources,
            client,
            interval,
            std::time::Duration::from_secs(10),
            keep_raw,
        )
    }

    /// The Prometheus source, when there is one, answers and its queries match series: checked
    /// before a run's first effect, so a canary never starts blind.
    pub async fn check_sources(&self) -> anyhow::Result<()> {
        if let Some(p) = &self.sources.prometheus {
            p.reachable().await?;
            p.ready(std::time::Duration::ZERO, self.ready_within)
                .await?;
        }
        Ok(())
    }

    /// The `host:port` of the target, for the stage's network grant.
    pub fn hosts(&self) -> Vec<String> {
        url_hosts([&self.url, &self.api_url])
    }
}

/// The `host` or `host:port` of each URL that parses, for a network grant.
pub fn url_hosts<'a>(urls: impl IntoIterator<Item = &'a String>) -> Vec<String> {
    urls.into_iter()
        .filter_map(|u| reqwest::Url::parse(u).ok())
        .filter_map(|u| {
            Some(match u.port() {
                Some(p) => format!("{}:{p}", u.host_str()?),
                None => u.host_str()?.to_string(),
            })
        })
        .collect()
}

pub async fn open(
    name: &str,
    spec: &Environment,
    runbook: &Runbook,
    envs_dir: &Path,
    inject: Inject,
) -> anyhow::Result<Env> {
    let dir = envs_dir.join(name);
    let local_store = Arc::new(LocalStore::new(dir.join("store")));
    let local_flags = Arc::new(LocalFlags::new(dir.join("flags.json")));
    let (url, api_url, simulator) = if spec.is_embedded() {
        // First start: the live site is the legacy board and every flag is off, as in
        // production before a launch.
        if local_store.current()?.is_none() {
            let build = dir.join("seed-build");
            site::write_statusboard_build(&build, "legacy", false)
                .context("writing the legacy site")?;
            local_store.publish("00000000T000000Z-legacy", &build)?;
            local_store.set_current("00000000T000000Z-legacy")?;
            let _ = std::fs::remove_dir_all(&build);
            local_flags.write(&runbook.launch.flag, 0)?;
            for f in &runbook.launch.component_flags {
                local_flags.write(f, 0)?;
            }
        }
        let sim = Simulator::start(SimulatorConfig {
            store: local_store.clone(),
            flags: local_flags.clone(),
            flag: runbook.launch.flag.clone(),
            inject,
            inject_file: Some(dir.join("inject")),
            listen: spec.listen_addr(),
            traffic: spec.traffic.as_ref().map_or(0, |t| *t.get_ref()),
        })
        .await
        .with_context(|| format!("starting the embedded target for `{name}`"))?;
        (sim.url(), sim.url(), Some(sim))
    } else {
        (
            spec.url.clone().context("url")?,
            spec.api_url.clone().context("api-url")?,
            None,
        )
    };
    let store: Arc<dyn ArtifactStore> = match spec.store_url() {
        None => local_store,
        Some(url) if url.starts_with("s3://") => {
            anyhow::ensure!(
                !spec.is_embedded(),
                "environment `{name}`: an embedded target serves its own local store; drop `store` or point `url` at the real site"
            );
            Arc::new(S3Store::connect(url).await?)
        }
        Some(other) => anyhow::bail!("environment `{name}`: store `{other}` is not an s3:// URL"),
    };
    // Where the engine reads and moves flags: checked by `validate`, so `None` is a runbook
    // that was not.
    let context = || format!("environment `{name}`: flags");
    let provider = spec.flag_provider().with_context(|| {
        format!("environment `{name}`: flags `{}` is not a provider launch-host knows (run `launch-host validate`)", spec.flags_spec().unwrap_or_default())
    })?;
    let flags: Arc<dyn FlagStore> = match provider {
        FlagProvider::File => local_flags,
        FlagProvider::Http => Arc::new(HttpFlags::new(format!(
            "{api_url}/api/admin/feature-flags"
        ))?),
        FlagProvider::S3(url) => Arc::new(
            S3Flags::connect(url, Document::Percentages)
                .await
                .with_context(context)?,
        ),
        FlagProvider::FlagdFile(path) => Arc::new(LocalFlags::flagd(path)),
        FlagProvider::FlagdObject(url) => Arc::new(
            S3Flags::connect(url, Document::Flagd)
                .await
                .with_context(context)?,
        ),
        FlagProvider::Unleash(u) => Arc::new(
            UnleashFlags::new(UnleashConfig {
                url: u.url.get_ref().clone(),
                token: u.token.get_ref().clone(),
                project: u.project.clone(),
                environment: u.environment.clone().unwrap_or_else(|| name.to_string()),
                on_rollback: u.on_rollback,
            })
            .with_context(context)?,
        ),
    };
    let cdn = match &spec.cloudfront {
        Some(id) => Some(Arc::new(CloudFront::connect(id).await)),
        None => None,
    };
    let metrics = spec.metrics.as_ref();
    let prometheus = match metrics.and_then(Metrics::prometheus_config) {
        Some(config) => Some(Arc::new(Prometheus::new(config)?)),
        None => None,
    };
    let sources = Sources {
        probe: Metrics::uses(metrics, Source::Probe)
            .then(|| (statusboard_endpoints(&api_url), runbook.defaults.probe_rate)),
        prometheus,
    };
    Ok(Env {
        name: name.into(),
        store,
        flags,
        url,
        api_url,
        cdn,
        sources,
        ready_within: metrics.map_or(std::time::Duration::ZERO, |m| m.ready_within),
        _simulator: simulator,
    })
}
