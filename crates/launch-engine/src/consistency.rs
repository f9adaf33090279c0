//! Whether a runbook and the plugins it names fit together: each plugin exists, plays the role
//! its stage needs, and accepts the stage's config (its JSON Schema). Checked by `validate`,
//! before a run's first effect, and by the pre-flight stage; one checker for all three.

use crate::runbook::{Action, Runbook, Stage};
use launch_runtime::{Catalog, Plugin, Role};

/// Checks the runbook against the plugins it names: each exists and plays the role the stage
/// needs, and each stage's config is accepted. Returns every problem, each with its line.
pub fn validate(runbook: &Runbook, catalog: &Catalog) -> Vec<String> {
    let mut problems = Vec::new();
    for stage in &runbook.stages {
        let Some(name) = &stage.plugin else { continue };
        let Some(plugin) = catalog.get(name.get_ref()) else {
            let known: Vec<&str> = catalog
                .plugins
                .iter()
                .map(|p| p.info.name.as_str())
                .collect();
            problems.push(
                runbook
                    .error_at(
                        name.span().start,
                        format!(
                            "stage `{}`: no plugin named `{}` in {} (found: {})",
                            stage.name.get_ref(),
                            name.get_ref(),
                            catalog.dir.display(),
                            known.join(", ")
                        ),
                    )
                    .to_string(),
            );
            continue;
        };
        if let Some(schema) = &plugin.info.config_schema
            && let Err(e) = check_config(schema, &stage.config_value())
        {
            let at = stage
                .config
                .as_ref()
                .map_or(name.span().start, |c| c.span().start);
            problems.push(
                runbook
                    .error_at(
                        at,
                        format!(
                            "stage `{}`: config rejected by `{}`'s schema: {e}",
                            stage.name.get_ref(),
                            plugin.info.name
                        ),
                    )
                    .to_string(),
            );
        }
        if let Err(e) = check_role(stage, plugin) {
            problems.push(
                runbook
                    .error_at(
                        name.span().start,
                        format!("stage `{}`: {e}", stage.name.get_ref()),
                    )
                    .to_string(),
            );
        }
    }
    problems
}

/// The role a stage's plugin must play.
pub fn check_role(stage: &Stage, plugin: &Plugin) -> Result<(), String> {
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
