//! Operator commands as typed plans. `deploy staging`, `smoke --full`, `canary promote 50`,
//! `rollback full`... each is an `Operation`; `plan` turns it, with the parsed runbook and the
//! plugin catalog, into the runbook the run executes: the same launch, defaults and
//! environments (only those the command touches), and the stages that do the command's job —
//! the runbook's own, or stages the host writes for it. Nothing is written as text and parsed
//! again; the operation is saved in the run folder so `resume` plans the same stages.

use serde::{Deserialize, Serialize};

use crate::runbook::{Action, Runbook, Stage};
use launch_runtime::{Catalog, Role};

/// How far a rollback goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RollbackMode {
    /// The primary flag to 0 at once.
    Emergency,
    /// The flag to 0, the previous release current again, and a CDN invalidation.
    Full,
    /// Post-rollback health checks: flag at 0, API healthy, site up, legacy serving.
    Validate,
}

/// What an operator asked for.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum Operation {
    /// Every stage of the runbook (`run`, `playbook auto|interactive`).
    #[default]
    Playbook,
    /// The pre-flight checklist: plugins, runbook, targets, stores, flags.
    PlaybookValidate,
    Deploy {
        environment: String,
    },
    Smoke {
        environment: String,
        full: bool,
    },
    CanaryInit {
        environment: String,
    },
    CanaryStart {
        environment: String,
    },
    CanaryPromote {
        environment: String,
        percent: u8,
    },
    CanaryRollback {
        environment: String,
        reason: String,
    },
    Rollback {
        environment: String,
        mode: RollbackMode,
        reason: String,
    },
    UatInit {
        environment: String,
    },
    UatReport {
        environment: String,
    },
    /// Pre-flight and the UAT gate.
    LaunchValidate,
    LaunchFull {
        environment: String,
    },
    LaunchBuild {
        environment: String,
    },
    LaunchDeploy {
        environment: String,
    },
    LaunchRollout {
        environment: String,
    },
    LaunchMonitor {
        environment: String,
        secs: u64,
    },
}

/// A command that cannot be planned on this runbook.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{source_name} has no stage that {what}; add one to the runbook")]
    NoStage { source_name: String, what: String },
    #[error("{source_name}: no environment `{name}` (defined: {known})")]
    UnknownEnvironment {
        source_name: String,
        name: String,
        known: String,
    },
}

impl Operation {
    /// The command as the operator typed it, for messages and the run's record.
    pub fn command(&self) -> String {
        use Operation::*;
        match self {
            Playbook => "run".into(),
            PlaybookValidate => "playbook validate".into(),
            Deploy { environment } => format!("deploy {environment}"),
            Smoke { environment, full } => {
                format!(
                    "smoke --env {environment}{}",
                    if *full { " --full" } else { "" }
                )
            }
            CanaryInit { environment } => format!("canary init --env {environment}"),
            CanaryStart { environment } => format!("canary start --env {environment}"),
            CanaryPromote {
                environment,
                percent,
            } => {
                format!("canary promote {percent} --env {environment}")
            }
            CanaryRollback { environment, .. } => format!("canary rollback --env {environment}"),
            Rollback {
                environment, mode, ..
            } => {
                let mode = match mode {
                    RollbackMode::Emergency => "emergency",
                    RollbackMode::Full => "full",
                    RollbackMode::Validate => "validate",
                };
                format!("rollback {mode} --env {environment}")
            }
            UatInit { environment } => format!("uat init --env {environment}"),
            UatReport { environment } => format!("uat report --env {environment}"),
            LaunchValidate => "launch validate".into(),
            LaunchFull { environment } => format!("launch full-launch --env {environment}"),
            LaunchBuild { environment } => format!("launch build --env {environment}"),
            LaunchDeploy { environment } => format!("launch deploy --env {environment}"),
            LaunchRollout { environment } => format!("launch rollout --env {environment}"),
            LaunchMonitor { environment, secs } => {
                format!("launch monitor {secs} --env {environment}")
            }
        }
    }

    /// Whether planning or running it needs the plugins. Rollbacks, flag moves and deploys are
    /// host code only: they run from any folder, plugins or none, and load no plugin.
    pub fn needs_plugins(&self) -> bool {
        use Operation::*;
        !matches!(
            self,
            Deploy { .. }
                | CanaryInit { .. }
                | CanaryPromote { .. }
                | CanaryRollback { .. }
                | Rollback { .. }
                | LaunchBuild { .. }
                | LaunchDeploy { .. }
        )
    }

    /// Whether it takes the environments' run locks. Rollbacks, smoke tests, monitoring and
    /// validation do not: nothing may stand between an operator and turning the feature off,
    /// and reading never conflicts with a launch.
    pub fn takes_lock(&self) -> bool {
        use Operation::*;
        !matches!(
            self,
            PlaybookValidate
                | Smoke { .. }
                | CanaryRollback { .. }
                | Rollback { .. }
                | UatReport { .. }
                | LaunchValidate
                | LaunchMonitor { .. }
        )
    }

    /// Commands that ask nothing: a rollback acts the moment it is typed, and the pre-flight
    /// checklist only reads.
    pub fn never_asks(&self) -> bool {
        matches!(
            self,
            Operation::Rollback { .. }
                | Operation::CanaryRollback { .. }
                | Operation::PlaybookValidate
        )
    }
}

/// The runbook the run executes for `op`: stages picked from `runbook` or written for the
/// command, and the environments they touch.
pub fn plan(op: &Operation, runbook: &Runbook, catalog: &Catalog) -> Result<Runbook, PlanError> {
    use Operation::*;
    let role = |s: &Stage| {
        s.plugin_name()
            .and_then(|p| catalog.get(p))
            .map(|p| p.role())
    };
    let on = |s: &Stage, env: &str| s.environment() == Some(env);
    let pick = |keep: &dyn Fn(&Stage) -> bool| -> Vec<Stage> {
        runbook.stages.iter().filter(|s| keep(s)).cloned().collect()
    };
    let (stages, what): (Vec<Stage>, String) = match op {
        Playbook => (runbook.stages.clone(), "runs".into()),
        PlaybookValidate => (
            vec![preflight(
                "Pre-flight validation: plugins, runbook, targets, flags",
            )],
            "validates".into(),
        ),
        Deploy { environment: env } | LaunchDeploy { environment: env } => (
            pick(&|s| s.action() == Some(Action::Deploy) && on(s, env)),
            format!("deploys to `{env}` (action = \"deploy\")"),
        ),
        LaunchBuild { environment: env } => (
            pick(&|s| s.action() == Some(Action::Deploy) && on(s, env))
                .into_iter()
                .map(|mut s| {
                    let name = format!("{}-build", s.name.get_ref());
                    s.name = toml::Spanned::new(s.name.span(), name);
                    s.action = Some(toml::Spanned::new(0..0, Action::Build));
                    s.title = Some(format!("Build for {env}"));
                    s
                })
                .collect(),
            format!("deploys to `{env}` (its build settings are used)"),
        ),
        Smoke {
            environment: env,
            full,
        } => (
            pick(&|s| role(s) == Some(Role::SmokeSuite) && on(s, env))
                .into_iter()
                .map(|mut s| {
                    let mode = if *full { "full" } else { "quick" };
                    // Errors about the config still point at its line in the runbook.
                    let span = s.config.as_ref().map_or(s.name.span(), |c| c.span());
                    let mut config = s.config.take().map(|c| c.into_inner()).unwrap_or_default();
                    config.insert("mode".into(), mode.into());
                    s.config = Some(toml::Spanned::new(span, config));
                    s
                })
                .collect(),
            format!("runs a smoke-suite plugin against `{env}`"),
        ),
        CanaryInit { environment: env } => (
            std::iter::once(&runbook.launch.flag)
                .chain(&runbook.launch.component_flags)
                .map(|f| flag_stage(env, f, 0))
                .collect(),
            "sets flags".into(),
        ),
        CanaryStart { environment: env } | LaunchRollout { environment: env } => (
            pick(&|s| role(s) == Some(Role::CanaryPolicy) && on(s, env)),
            format!("runs a canary-policy plugin on `{env}`"),
        ),
        CanaryPromote {
            environment: env,
            percent,
        } => (
            vec![flag_stage(env, &runbook.launch.flag, *percent)],
            "sets flags".into(),
        ),
        CanaryRollback {
            environment,
            reason,
        } => (
            vec![rollback(environment, RollbackMode::Emergency, reason)],
            "rolls back".into(),
        ),
        Rollback {
            environment,
            mode,
            reason,
        } => (
            vec![rollback(environment, *mode, reason)],
            "rolls back".into(),
        ),
        UatInit { environment: env } => (
            pick(&|s| s.action() == Some(Action::UatInit) && on(s, env)),
            format!("initializes UAT on `{env}` (action = \"uat-init\")"),
        ),
        UatReport { environment: env } => (
            pick(&|s| role(s) == Some(Role::UatChecklist) && s.action.is_none() && on(s, env)),
            format!("runs the UAT gate on `{env}`"),
        ),
        LaunchValidate => {
            // The UAT gate too: production needs UAT approval.
            let mut stages = vec![preflight("Pre-flight validation")];
            stages.extend(pick(&|s| {
                role(s) == Some(Role::UatChecklist) && s.action.is_none()
            }));
            (stages, "validates".into())
        }
        LaunchFull { environment: env } => (
            pick(&|s| on(s, env) || s.action() == Some(Action::Report)),
            format!("acts on `{env}`"),
        ),
        LaunchMonitor {
            environment: env,
            secs,
        } => {
            let mut monitor = Stage::builtin(
                "production-monitor",
                &format!("Monitor {env} for {secs} s"),
                Action::Monitor,
                Some(env),
            );
            monitor.duration = Some(std::time::Duration::from_secs(*secs));
            monitor.interval = Some(std::time::Duration::from_secs((*secs).clamp(1, 60)));
            // Monitoring first, then the environment's SLO gates judge what it measured.
            let mut stages = vec![monitor];
            stages.extend(pick(&|s| role(s) == Some(Role::SloGate) && on(s, env)));
            (stages, format!("monitors `{env}`"))
        }
    };
    if stages.is_empty() {
        return Err(PlanError::NoStage {
            source_name: runbook.source.clone(),
            what,
        });
    }
    if let Some(name) = stages
        .iter()
        .filter_map(Stage::environment)
        .find(|e| !runbook.environments.contains_key(*e))
    {
        return Err(PlanError::UnknownEnvironment {
            source_name: runbook.source.clone(),
            name: name.to_string(),
            known: runbook
                .environments
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    let mut planned = runbook.clone();
    // Only the environments the command touches are opened: rolling back production must not
    // depend on staging being reachable. A stage bound to none (pre-flight) needs them all.
    let used: Option<Vec<&str>> = stages.iter().map(Stage::environment).collect();
    if let Some(used) = used {
        planned
            .environments
            .retain(|name, _| used.contains(&name.as_str()));
    }
    planned.stages = stages;
    if *op != Playbook {
        planned.source = format!("{} → `{}`", runbook.source, op.command());
    }
    Ok(planned)
}

fn preflight(title: &str) -> Stage {
    Stage::builtin("preflight", title, Action::Preflight, None)
}

fn flag_stage(env: &str, flag: &str, percent: u8) -> Stage {
    let mut s = Stage::builtin(
        &format!("flag-{}", flag.to_lowercase()),
        &format!("{flag} → {percent}%"),
        Action::Flag,
        Some(env),
    );
    s.flag = Some(flag.to_string());
    s.percent = Some(percent);
    s
}

fn rollback(env: &str, mode: RollbackMode, reason: &str) -> Stage {
    let (name, title, action) = match mode {
        RollbackMode::Emergency => (
            "rollback-emergency",
            "Emergency rollback: primary flag to 0",
            Action::Rollback,
        ),
        RollbackMode::Full => (
            "rollback-full",
            "Full rollback: flag to 0, previous release current",
            Action::Rollback,
        ),
        RollbackMode::Validate => (
            "rollback-validate",
            "Post-rollback validation",
            Action::VerifyRollback,
        ),
    };
    let mut s = Stage::builtin(name, title, action, Some(env));
    if mode != RollbackMode::Validate {
        s.reason = Some(reason.to_string());
        s.full = mode == RollbackMode::Full;
    }
    s
}
