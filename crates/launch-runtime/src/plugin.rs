//! A loaded plugin and the calls into it. Every call gets a fresh instance from the plugin's
//! `InstancePre` (nothing leaks between calls), its own capability state built from the stage's
//! grants, a memory ceiling and a deadline.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};
use wasmtime::Store;
use wasmtime::component::InstancePre;

use super::Runtime;
use super::bindings;
use super::bounds::Bound;
use super::cache::LoadSource;
use super::contract::{self, Role};
use super::engine::deadline_ticks;
use super::error::{CallFailure, FailureKind, LoadError};
use super::limits::{Limits, MemoryLimitExceeded};
use super::state::PluginState;
use super::types;
use crate::capabilities::Grants;
use crate::capabilities::log::{LogLine, Source};

/// What the operator allows one call: limits enforced by the runtime, grants by capabilities.
#[derive(Debug, Clone, Default)]
pub struct Sandbox {
    pub limits: Limits,
    pub grants: Arc<Grants>,
}

/// What a plugin says about itself, in the host's types.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub role: Role,
    pub description: String,
    pub capabilities: Vec<String>,
    pub config_schema: Option<serde_json::Value>,
}

/// How loading went.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct LoadReport {
    pub source: LoadSource,
    #[serde(serialize_with = "as_millis")]
    pub elapsed: Duration,
}

fn as_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

/// A successful call's value, with what the plugin logged and how long it took.
#[derive(Debug)]
pub struct Called<T> {
    pub value: T,
    pub logs: Vec<LogLine>,
    pub elapsed: Duration,
    /// Requests the plugin made through the `http` capability.
    pub http_requests: usize,
}

enum RolePre {
    SmokeSuite(bindings::smoke_suite::SmokeSuitePluginPre<PluginState>),
    SloGate(bindings::slo_gate::SloGatePluginPre<PluginState>),
    UatChecklist(bindings::uat_checklist::UatChecklistPluginPre<PluginState>),
    CanaryPolicy(bindings::canary_policy::CanaryPolicyPluginPre<PluginState>),
    Step(bindings::step::StepPluginPre<PluginState>),
}

pub struct Plugin {
    pub path: PathBuf,
    /// sha256 of the file, hex.
    pub digest: String,
    pub size: u64,
    /// The contract version the plugin was built against.
    pub contract: String,
    pub info: PluginInfo,
    pub load: LoadReport,
    runtime: Runtime,
    describe: bindings::describe::PluginPre<PluginState>,
    role: RolePre,
}

/// What the first bytes of a file say it is.
enum FileKind {
    Component,
    CoreModule,
    NotWasm(String),
}

fn classify(bytes: &[u8]) -> FileKind {
    match bytes {
        [0x00, b'a', b's', b'm', 0x01, 0x00, 0x00, 0x00, ..] => FileKind::CoreModule,
        [0x00, b'a', b's', b'm', _, _, 0x01, 0x00, ..] => FileKind::Component,
        [0x00, b'a', b's', b'm', ..] => {
            FileKind::NotWasm("a WebAssembly binary of an unknown version or layer".into())
        }
        [] => FileKind::NotWasm("an empty file".into()),
        _ => match std::str::from_utf8(&bytes[..bytes.len().min(64)]) {
            Ok(text) => FileKind::NotWasm(format!(
                "a text file starting with {:?}",
                text.lines().next().unwrap_or("")
            )),
            Err(_) => FileKind::NotWasm(format!(
                "binary data starting with {}",
                hex::encode(&bytes[..bytes.len().min(8)])
            )),
        },
    }
}

pub(super) async fn load(
    runtime: &Runtime,
    path: &Path,
    use_cache: bool,
) -> Result<Plugin, LoadError> {
    let started = Instant::now();
    let path = path.to_path_buf();
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|source| LoadError::Read {
            path: path.clone(),
            source,
        })?;
    match classify(&bytes) {
        FileKind::Component => {}
        FileKind::CoreModule => return Err(LoadError::CoreModule { path }),
        FileKind::NotWasm(found) => return Err(LoadError::NotWasm { path, found }),
    }
    let digest = hex::encode(Sha256::digest(&bytes));
    let invalid = |e: wasmtime::Error| LoadError::Invalid {
        path: path.clone(),
        reason: format!("{e:#}"),
    };
    let (component, source) = runtime
        .inner
        .cache
        .load(&runtime.inner.engine, &bytes, &digest, use_cache)
        .await
        .map_err(invalid)?;

    let component_type = component.component_type();
    let scan = contract::scan_exports(
        component_type
            .exports(&runtime.inner.engine)
            .map(|(name, _)| name),
    );
    if let Some(found) = scan.versions.iter().find(|v| !contract::is_compatible(v)) {
        return Err(LoadError::IncompatibleContract {
            path,
            found: found.clone(),
        });
    }
    let role = match scan.roles.as_slice() {
        [role] if scan.has_describe => *role,
        [] | [_] => {
            return Err(LoadError::NoRole {
                path,
                exports: scan.exports,
            });
        }
        roles => {
            return Err(LoadError::SeveralRoles {
                path,
                roles: roles.to_vec(),
            });
        }
    };
    let pre: InstancePre<PluginState> =
        runtime
            .inner
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Link {
                path: path.clone(),
                reason: format!("{e:#}"),
            })?;
    let typed = |e: wasmtime::Error| LoadError::Invalid {
        path: path.clone(),
        reason: format!("its `{role}` export does not match this host's contract: {e:#}"),
    };
    let describe = bindings::describe::PluginPre::new(pre.clone()).map_err(typed)?;
    let role_pre = match role {
        Role::SmokeSuite => RolePre::SmokeSuite(
            bindings::smoke_suite::SmokeSuitePluginPre::new(pre).map_err(typed)?,
        ),
        Role::SloGate => {
            RolePre::SloGate(bindings::slo_gate::SloGatePluginPre::new(pre).map_err(typed)?)
        }
        Role::UatChecklist => RolePre::UatChecklist(
            bindings::uat_checklist::UatChecklistPluginPre::new(pre).map_err(typed)?,
        ),
        Role::CanaryPolicy => RolePre::CanaryPolicy(
            bindings::canary_policy::CanaryPolicyPluginPre::new(pre).map_err(typed)?,
        ),
        Role::Step => RolePre::Step(bindings::step::StepPluginPre::new(pre).map_err(typed)?),
    };
    let load = LoadReport {
        source,
        elapsed: started.elapsed(),
    };

    let file_name = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let sandbox = Sandbox::default();
    let described = call(runtime, &file_name, "describe", &sandbox, |mut store| {
        let describe = describe.clone();
        async move {
            let instance = describe.instantiate_async(&mut store).await?;
            let info = instance
                .launch_plugin_describe()
                .call_describe(&mut store)
                .await?;
            Ok((info, store))
        }
    })
    .await
    .map_err(|failure| LoadError::Describe {
        path: path.clone(),
        failure: Box::new(failure),
    })?;
    let info = host_info(described.value, role, &path)?;
    let version = scan.versions.first().cloned().unwrap_or_default();
    Ok(Plugin {
        size: bytes.len() as u64,
        digest,
        contract: version,
        info,
        load,
        runtime: runtime.clone(),
        describe,
        role: role_pre,
        path,
    })
}

fn host_info(
    mut info: types::PluginInfo,
    exported: Role,
    path: &Path,
) -> Result<PluginInfo, LoadError> {
    info.bound();
    let bad = |reason: String| LoadError::BadInfo {
        path: path.to_path_buf(),
        reason,
    };
    let described = match info.role {
        types::Role::SmokeSuite => Role::SmokeSuite,
        types::Role::SloGate => Role::SloGate,
        types::Role::UatChecklist => Role::UatChecklist,
        types::Role::CanaryPolicy => Role::CanaryPolicy,
        types::Role::Step => Role::Step,
    };
    if described != exported {
        return Err(LoadError::RoleMismatch {
            path: path.to_path_buf(),
            described,
            exported,
        });
    }
    let name_ok = !info.name.is_empty()
        && info.name.len() <= 64
        && info
            .name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !name_ok {
        return Err(bad(format!(
            "name {:?} must be 1-64 characters of a-z, 0-9, `-` or `_`",
            info.name
        )));
    }
    let config_schema = match info.config_schema {
        None => None,
        Some(s) => Some(
            serde_json::from_str(&s)
                .map_err(|e| bad(format!("its config schema is not JSON: {e}")))?,
        ),
    };
    Ok(PluginInfo {
        name: info.name,
        version: info.version,
        role: described,
        description: info.description,
        capabilities: info
            .capabilities
            .iter()
            .map(|c| match c {
                types::Capability::Log => "log".to_string(),
                types::Capability::Http => "http".to_string(),
            })
            .collect(),
        config_schema,
    })
}

/// Runs one call in a fresh store under `sandbox`, turning every way it can go wrong into a
/// `CallFailure` that names the plugin and function.
async fn call<T, F, Fut>(
    runtime: &Runtime,
    plugin: &str,
    function: &str,
    sandbox: &Sandbox,
    body: F,
) -> Result<Called<T>, CallFailure>
where
    F: FnOnce(Store<PluginState>) -> Fut,
    Fut: Future<Output = wasmtime::Result<(T, Store<PluginState>)>>,
{
    let started = Instant::now();
    let state = PluginState::new(
        sandbox.grants.clone(),
        runtime.inner.http.clone(),
        sandbox.limits.memory_bytes,
    );
    let stdout = state.stdout.clone();
    let stderr = state.stderr.clone();
    let mut store = Store::new(&runtime.inner.engine, state);
    store.limiter(|s| &mut s.memory);
    store.set_epoch_deadline(deadline_ticks(sandbox.limits.deadline));
    store.epoch_deadline_trap();

    // The epoch deadline stops guest code; this timeout also covers time spent awaiting host
    // calls (a slow HTTP request), with a little slack so the epoch trap wins when both apply.
    let hard = sandbox.limits.deadline + Duration::from_millis(250);
    let outcome = tokio::time::timeout(hard, body(store)).await;

    let collect_logs = |state: Option<PluginState>| {
        let (mut sink, denied) = match state {
            Some(s) => (s.log, s.http_gate.denied),
            None => (
                crate::capabilities::log::LogSink::new(
                    sandbox.grants.log_max_lines,
                    sandbox.grants.log_max_line_bytes,
                ),
                Vec::new(),
            ),
        };
        for d in denied {
            sink.push(crate::capabilities::log::Level::Warn, Source::Log, &d);
        }
        sink.push_captured(Source::Stdout, &stdout.take());
        sink.push_captured(Source::Stderr, &stderr.take());
        sink.finish()
    };
    let failure = |kind: FailureKind, logs: Vec<LogLine>| CallFailure {
        plugin: plugin.to_string(),
        function: function.to_string(),
        kind,
        logs,
    };
    match outcome {
        Ok(Ok((value, store))) => {
            let state = store.into_data();
            let http_requests = state.http.requests;
            Ok(Called {
                value,
                logs: collect_logs(Some(state)),
                elapsed: started.elapsed(),
                http_requests,
            })
        }
        Ok(Err(error)) => Err(failure(classify_error(&error, sandbox), collect_logs(None))),
        Err(_) => Err(failure(
            FailureKind::Deadline(sandbox.limits.deadline),
            collect_logs(None),
        )),
    }
}

fn classify_error(error: &wasmtime::Error, sandbox: &Sandbox) -> FailureKind {
    if let Some(m) = error.downcast_ref::<MemoryLimitExceeded>() {
        return FailureKind::MemoryLimit {
            limit: m.limit,
            requested: m.requested,
        };
    }
    match error.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => FailureKind::Deadline(sandbox.limits.deadline),
        Some(trap) => FailureKind::Trap(trap.to_string()),
        None => {
            let text = format!("{error:#}");
            // Pool exhaustion or a failing start function surfaces before any guest code runs.
            if text.contains("instantiat") || text.contains("pooling") {
                FailureKind::Instantiate(text)
            } else {
                FailureKind::Trap(text)
            }
        }
    }
}

macro_rules! role_call {
    ($self:ident, $variant:ident, $function:literal, $sandbox:ident, |$inst:ident, $store:ident| $call:expr) => {{
        let RolePre::$variant(pre) = &$self.role else {
            return Err($self.wrong_role($function));
        };
        let pre = pre.clone();
        call(
            &$self.runtime,
            &$self.info.name,
            $function,
            $sandbox,
            |mut $store| async move {
                let $inst = pre.instantiate_async(&mut $store).await?;
                let value = $call.await?;
                Ok((value, $store))
            },
        )
        .await
    }};
}

impl Plugin {
    pub fn role(&self) -> Role {
        self.info.role
    }

    fn wrong_role(&self, function: &str) -> CallFailure {
        CallFailure {
            plugin: self.info.name.clone(),
            function: function.to_string(),
            kind: FailureKind::Instantiate(format!(
                "the plugin is a `{}`, it has no `{function}`",
                self.info.role
            )),
            logs: Vec::new(),
        }
    }

    /// Calls `describe` again on a fresh instance (used to measure instantiate + call).
    pub async fn describe(
        &self,
        sandbox: &Sandbox,
    ) -> Result<Called<types::PluginInfo>, CallFailure> {
        let pre = self.describe.clone();
        call(
            &self.runtime,
            &self.info.name,
            "describe",
            sandbox,
            |mut store| async move {
                let instance = pre.instantiate_async(&mut store).await?;
                let mut info = instance
                    .launch_plugin_describe()
                    .call_describe(&mut store)
                    .await?;
                info.bound();
                Ok((info, store))
            },
        )
        .await
    }

    pub async fn run_smoke_suite(
        &self,
        sandbox: &Sandbox,
        target: &types::Target,
        config_json: &str,
    ) -> Result<Called<types::StepReport>, CallFailure> {
        let target = target.clone();
        let config = config_json.to_string();
        bounded(role_call!(
            self,
            SmokeSuite,
            "smoke-suite.run",
            sandbox,
            |i, store| i
                .launch_plugin_smoke_suite()
                .call_run(&mut store, &target, &config)
        ))
    }

    pub async fn evaluate_slo(
        &self,
        sandbox: &Sandbox,
        samples: &types::Samples,
        config_json: &str,
    ) -> Result<Called<types::StepReport>, CallFailure> {
        let samples = samples.clone();
        let config = config_json.to_string();
        bounded(role_call!(
            self,
            SloGate,
            "slo-gate.evaluate",
            sandbox,
            |i, store| i
                .launch_plugin_slo_gate()
                .call_evaluate(&mut store, &samples, &config)
        ))
    }

    pub async fn uat_checklist(
        &self,
        sandbox: &Sandbox,
        config_json: &str,
    ) -> Result<Called<Vec<types::UatItem>>, CallFailure> {
        let config = config_json.to_string();
        role_call!(
            self,
            UatChecklist,
            "uat-checklist.checklist",
            sandbox,
            |i, store| i
                .launch_plugin_uat_checklist()
                .call_checklist(&mut store, &config)
        )
    }

    pub async fn evaluate_uat(
        &self,
        sandbox: &Sandbox,
        results: &[types::UatResult],
        signoffs: &[types::Signoff],
        config_json: &str,
    ) -> Result<Called<types::StepReport>, CallFailure> {
        let (results, signoffs, config) =
            (results.to_vec(), signoffs.to_vec(), config_json.to_string());
        bounded(role_call!(
            self,
            UatChecklist,
            "uat-checklist.evaluate",
            sandbox,
            |i, store| i
                .launch_plugin_uat_checklist()
                .call_evaluate(&mut store, &results, &signoffs, &config)
        ))
    }

    pub async fn decide_canary(
        &self,
        sandbox: &Sandbox,
        state: &types::CanaryState,
        history: &[types::CanaryWindow],
        config_json: &str,
    ) -> Result<Called<types::Decision>, CallFailure> {
        let (state, history, config) = (*state, history.to_vec(), config_json.to_string());
        let mut called = role_call!(
            self,
            CanaryPolicy,
            "canary-policy.decide",
            sandbox,
            |i, store| i
                .launch_plugin_canary_policy()
                .call_decide(&mut store, state, &history, &config)
        )?;
        called.value.checks.bound();
        Ok(called)
    }

    pub async fn run_step(
        &self,
        sandbox: &Sandbox,
        context: &types::StepContext,
        config_json: &str,
    ) -> Result<Called<types::StepReport>, CallFailure> {
        let (context, config) = (context.clone(), config_json.to_string());
        bounded(role_call!(self, Step, "step.run", sandbox, |i, store| i
            .launch_plugin_step()
            .call_run(&mut store, &context, &config)))
    }
}

fn bounded(
    r: Result<Called<types::StepReport>, CallFailure>,
) -> Result<Called<types::StepReport>, CallFailure> {
    r.map(|mut c| {
        c.value.bound();
        c
    })
}
