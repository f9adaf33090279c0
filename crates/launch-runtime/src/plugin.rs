//! A loaded plugin and the calls into it. Every call gets a fresh instance from the plugin's
//! `InstancePre` (nothing leaks between calls), its own capability state built from the stage's
//! grants, a memory ceiling and a deadline.

use std::path::PathBuf;
use std::time::Duration;

use wasmtime::Store;

use super::Runtime;
use super::bindings;
use super::bounds::Bound;
use super::cache::LoadSource;
pub use super::call::{Called, Sandbox};
use super::call::{Callee, call};
use super::contract::Role;
use super::error::{CallFailure, FailureKind};
use super::standby::{Spare, Standby};
use super::state::PluginState;
use super::types;

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

#[derive(Clone)]
pub(crate) enum RolePre {
    SmokeSuite(bindings::smoke_suite::SmokeSuitePluginPre<PluginState>),
    SloGate(bindings::slo_gate::SloGatePluginPre<PluginState>),
    UatChecklist(bindings::uat_checklist::UatChecklistPluginPre<PluginState>),
    CanaryPolicy(bindings::canary_policy::CanaryPolicyPluginPre<PluginState>),
    Step(bindings::step::StepPluginPre<PluginState>),
}

/// An instance of a role's world, not called yet (a spare: `standby`).
pub(crate) enum RoleInstance {
    SmokeSuite(bindings::smoke_suite::SmokeSuitePlugin),
    SloGate(bindings::slo_gate::SloGatePlugin),
    UatChecklist(bindings::uat_checklist::UatChecklistPlugin),
    CanaryPolicy(bindings::canary_policy::CanaryPolicyPlugin),
    Step(bindings::step::StepPlugin),
}

impl RolePre {
    pub(crate) async fn instantiate(
        &self,
        store: &mut Store<PluginState>,
    ) -> wasmtime::Result<RoleInstance> {
        Ok(match self {
            RolePre::SmokeSuite(p) => RoleInstance::SmokeSuite(p.instantiate_async(store).await?),
            RolePre::SloGate(p) => RoleInstance::SloGate(p.instantiate_async(store).await?),
            RolePre::UatChecklist(p) => {
                RoleInstance::UatChecklist(p.instantiate_async(store).await?)
            }
            RolePre::CanaryPolicy(p) => {
                RoleInstance::CanaryPolicy(p.instantiate_async(store).await?)
            }
            RolePre::Step(p) => RoleInstance::Step(p.instantiate_async(store).await?),
        })
    }
}

pub struct Plugin {
    pub path: PathBuf,
    /// sha256 of the file, hex.
    pub digest: String,
    pub size: u64,
    /// The contract version the plugin was built against.
    pub contract: String,
    /// The network interfaces it imports (`launch:plugin/http`, `wasi:http`), whatever it
    /// says in `describe`.
    pub network: Vec<&'static str>,
    /// Whether it imports any WASI interface; a call into a plugin without gets no WASI context.
    pub wasi: bool,
    pub info: PluginInfo,
    pub load: LoadReport,
    pub(crate) runtime: Runtime,
    pub(crate) describe: bindings::describe::PluginPre<PluginState>,
    pub(crate) role: RolePre,
    /// The next role call's instance, made ahead.
    pub(crate) standby: Standby,
}

macro_rules! role_call {
    ($self:ident, $variant:ident, $function:literal, $sandbox:ident, |$inst:ident, $store:ident| $call:expr) => {{
        let RolePre::$variant(pre) = &$self.role else {
            return Err($self.wrong_role($function));
        };
        let pre = pre.clone();
        // A spare made for this sandbox is this call's instance; else one is made now.
        let (prepared, ready) = match $self.standby.take($sandbox) {
            Some(Spare {
                prepared,
                instance: RoleInstance::$variant(instance),
                ..
            }) => (Some(prepared), Some(instance)),
            _ => (None, None),
        };
        call(
            &$self.runtime,
            $self.callee($function),
            $sandbox,
            prepared,
            |mut $store| async move {
                let value: wasmtime::Result<_> = async {
                    let $inst = match ready {
                        Some(instance) => instance,
                        None => pre.instantiate_async(&mut $store).await?,
                    };
                    $call.await
                }
                .await;
                (value, $store)
            },
            |used| {
                $self
                    .standby
                    .refresh(used, &$self.runtime, &$self.role, $sandbox, $self.wasi)
            },
        )
        .await
    }};
}

impl Plugin {
    pub fn role(&self) -> Role {
        self.info.role
    }

    fn callee<'a>(&'a self, function: &'a str) -> Callee<'a> {
        Callee {
            plugin: &self.info.name,
            function,
            wasi: self.wasi,
        }
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
            self.callee("describe"),
            sandbox,
            None,
            |mut store| async move {
                let info: wasmtime::Result<_> = async {
                    let instance = pre.instantiate_async(&mut store).await?;
                    let mut info = instance
                        .launch_plugin_describe()
                        .call_describe(&mut store)
                        .await?;
                    info.bound();
                    Ok(info)
                }
                .await;
                (info, store)
            },
            drop,
        )
        .await
    }

    pub async fn run_smoke_suite(
        &self,
        sandbox: &Sandbox,
        target: &types::Target,
        config_json: &str,
    ) -> Result<Called<types::StepReport>, CallFailure> {
        bounded(role_call!(
            self,
            SmokeSuite,
            "smoke-suite.run",
            sandbox,
            |i, store| i
                .launch_plugin_smoke_suite()
                .call_run(&mut store, target, config_json)
        ))
    }

    pub async fn evaluate_slo(
        &self,
        sandbox: &Sandbox,
        samples: &types::Samples,
        config_json: &str,
    ) -> Result<Called<types::StepReport>, CallFailure> {
        bounded(role_call!(
            self,
            SloGate,
            "slo-gate.evaluate",
            sandbox,
            |i, store| i
                .launch_plugin_slo_gate()
                .call_evaluate(&mut store, samples, config_json)
        ))
    }

    pub async fn uat_checklist(
        &self,
        sandbox: &Sandbox,
        config_json: &str,
    ) -> Result<Called<Vec<types::UatItem>>, CallFailure> {
        role_call!(
            self,
            UatChecklist,
            "uat-checklist.checklist",
            sandbox,
            |i, store| i
                .launch_plugin_uat_checklist()
                .call_checklist(&mut store, config_json)
        )
    }

    pub async fn evaluate_uat(
        &self,
        sandbox: &Sandbox,
        results: &[types::UatResult],
        signoffs: &[types::Signoff],
        config_json: &str,
    ) -> Result<Called<types::StepReport>, CallFailure> {
        bounded(role_call!(
            self,
            UatChecklist,
            "uat-checklist.evaluate",
            sandbox,
            |i, store| i.launch_plugin_uat_checklist().call_evaluate(
                &mut store,
                results,
                signoffs,
                config_json
            )
        ))
    }

    pub async fn decide_canary(
        &self,
        sandbox: &Sandbox,
        state: &types::CanaryState,
        history: &[types::CanaryWindow],
        config_json: &str,
    ) -> Result<Called<types::Decision>, CallFailure> {
        let mut called = role_call!(
            self,
            CanaryPolicy,
            "canary-policy.decide",
            sandbox,
            |i, store| i.launch_plugin_canary_policy().call_decide(
                &mut store,
                *state,
                history,
                config_json
            )
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
        bounded(role_call!(self, Step, "step.run", sandbox, |i, store| i
            .launch_plugin_step()
            .call_run(&mut store, context, config_json)))
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
