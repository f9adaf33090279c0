//! Whether a runbook and the plugins it names fit together: each plugin exists, plays the role
//! its stage needs, accepts the stage's config (its JSON Schema), and is the build its lock and
//! pins allow. Checked by `validate`,
//! before a run's first effect, and by the pre-flight stage; one checker for all three.

use crate::runbook::{Action, Runbook, Stage};
use launch_runtime::{Catalog, Plugin, Role};

/// Checks the runbook against the plugins it names: each exists and plays the role the stage
/// needs, each stage's config is accepted, and each shadow plays the live plugin's role and
/// accepts its config. Returns every problem, each with its line.
pub fn validate(runbook: &Runbook, catalog: &Catalog) -> Vec<String> {
    let mut problems = Vec::new();
    for stage in &runbook.stages {
        let Some(name) = &stage.plugin else { continue };
        let mut problem = |at: usize, message: String| {
            let message = format!("stage `{}`: {message}", stage.name.get_ref());
            problems.push(runbook.error_at(at, message).to_string());
        };
        let live = find(catalog, name.get_ref(), name.span().start, &mut problem);
        // Granted folders exist, are folders, and each has a name of its own in the sandbox.
        let dirs = runbook.read_only_dirs(stage);
        let mut guests = std::collections::HashMap::new();
        for d in &dirs {
            *guests.entry(d.guest.as_str()).or_insert(0usize) += 1;
        }
        for (spec, dir) in stage.files.iter().zip(&dirs) {
            if let Err(why) = runbook.granted(dir) {
                problem(spec.span().start, format!("files: {why}"));
            } else if guests[dir.guest.as_str()] > 1 {
                problem(
                    spec.span().start,
                    format!(
                        "files: two granted folders would both be {} in the sandbox; rename one",
                        dir.guest
                    ),
                );
            }
        }
        if let Some(plugin) = live {
            let at = stage
                .config
                .as_ref()
                .map_or(name.span().start, |c| c.span().start);
            check_schema(plugin, &stage.config_value(), at, &mut problem);
            if let Err(e) = check_role(stage, plugin) {
                problem(name.span().start, e);
            }
        }
        for shadow in &stage.shadow {
            let at = shadow.span().start;
            let shadow = shadow.get_ref();
            let Some(plugin) = find(catalog, shadow.plugin(), at, &mut problem) else {
                continue;
            };
            check_schema(plugin, &shadow.config_value(stage), at, &mut problem);
            let Some(live) = live else { continue };
            if plugin.role() != live.role() {
                problem(
                    at,
                    format!(
                        "shadow `{}` is a {}, the live `{}` a {}: a shadow plays the live plugin's role",
                        plugin.info.name,
                        plugin.role(),
                        live.info.name,
                        live.role()
                    ),
                );
            } else if live.role() == Role::UatChecklist {
                problem(
                    at,
                    "a UAT checklist cannot be shadowed (its inputs are people's answers, taken once)"
                        .into(),
                );
            }
        }
    }
    // The builds the lock and the stages' pins allow.
    problems.extend(crate::pins::check(runbook, catalog));
    // The signatures its [trust] requires.
    problems.extend(crate::trust::check(runbook, catalog));
    problems
}

/// The plugin named at `name`, or a problem listing the ones there are.
fn find<'a>(
    catalog: &'a Catalog,
    name: &str,
    at: usize,
    problem: &mut impl FnMut(usize, String),
) -> Option<&'a Plugin> {
    let found = catalog.get(name);
    // A reference that could not be fetched was reported where it was resolved.
    if found.is_none() && !launch_registry::PluginRef::is_oci(name) {
        let known: Vec<&str> = catalog
            .plugins
            .iter()
            .map(|p| p.info.name.as_str())
            .collect();
        problem(
            at,
            format!(
                "no plugin named `{}` in {} (found: {})",
                name,
                catalog.dir.display(),
                known.join(", ")
            ),
        );
    }
    found
}

/// The plugin's schema accepts `config` (a plugin without a schema accepts anything).
fn check_schema(
    plugin: &Plugin,
    config: &serde_json::Value,
    at: usize,
    problem: &mut impl FnMut(usize, String),
) {
    if let Some(schema) = &plugin.info.config_schema
        && let Err(e) = check_config(schema, config)
    {
        problem(
            at,
            format!("config rejected by `{}`'s schema: {e}", plugin.info.name),
        );
    }
}

/// The role a stage's plugin must play.
pub fn check_role(stage: &Stage, plugin: &Plugin) -> Result<(), String> {
    if let Some(expected) = &stage.role
        && *expected.get_ref() != plugin.role()
    {
        return Err(format!(
            "the stage expects a {} (role = \"{}\"), and `{}` is a {}: name a {} plugin, or change `role`",
            expected.get_ref(),
            expected.get_ref(),
            plugin.info.name,
            plugin.role(),
            expected.get_ref()
        ));
    }
    let is_uat_init = stage
        .action
        .as_ref()
        .is_some_and(|a| *a.get_ref() == Action::UatInit);
    if is_uat_init && plugin.role() != Role::UatChecklist {
        return Err(format!(
            "`uat-init` needs a uat-checklist plugin, `{}` is a {}",
            plugin.info.name,
            plugin.role()
        ));
    }
    if matches!(
        plugin.role(),
        Role::SmokeSuite | Role::CanaryPolicy | Role::UatChecklist
    ) && stage.environment.is_none()
    {
        return Err(format!(
            "a {} stage needs an `environment` to run against",
            plugin.role()
        ));
    }
    let stability = plugin.role() == Role::SloGate && stage.duration.is_some();
    if stage.breaches.is_some() && !stability {
        return Err(format!(
            "`breaches` counts a stability gate's failing windows: it needs an slo-gate plugin and a `duration` to watch for (`{}` is a {})",
            plugin.info.name,
            plugin.role()
        ));
    }
    if stability && stage.environment.is_none() {
        return Err("a stability gate (an slo-gate stage with a `duration`) needs an `environment` to watch".into());
    }
    Ok(())
}

/// Validates a stage's config against the plugin's JSON Schema.
pub fn check_config(schema: &serde_json::Value, config: &serde_json::Value) -> Result<(), String> {
    let validator = jsonschema::validator_for(schema)
        .map_err(|e| format!("the plugin's schema is invalid: {e}"))?;
    let errors: Vec<String> = validator
        .iter_errors(config)
        .map(|e| {
            let at = e.instance_path().to_string();
            if at.is_empty() {
                e.to_string()
            } else {
                format!("{at}: {e}")
            }
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}
