//! The plugin contract this host speaks (`wit/`), and what a component's exports say about the
//! contract and role it was built for.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The WIT package every plugin is built against.
pub const PACKAGE: &str = "launch:plugin";
/// Its version; must match `package launch:plugin@...` in `wit/`.
pub const VERSION: &str = "0.1.0";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    SmokeSuite,
    SloGate,
    UatChecklist,
    CanaryPolicy,
    Step,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::SmokeSuite,
        Role::SloGate,
        Role::UatChecklist,
        Role::CanaryPolicy,
        Role::Step,
    ];

    /// The role's interface name, as exported (`launch:plugin/<name>@<version>`).
    pub fn interface(self) -> &'static str {
        match self {
            Role::SmokeSuite => "smoke-suite",
            Role::SloGate => "slo-gate",
            Role::UatChecklist => "uat-checklist",
            Role::CanaryPolicy => "canary-policy",
            Role::Step => "step",
        }
    }

    /// The world a plugin of this role is built against.
    pub fn world(self) -> String {
        format!("{}-plugin", self.interface())
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.interface() == s)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.interface())
    }
}

/// What a component's export names say.
#[derive(Debug, Default, Clone)]
pub struct ExportScan {
    /// Contract versions found in `launch:plugin/...@version` exports.
    pub versions: Vec<String>,
    pub has_describe: bool,
    pub roles: Vec<Role>,
    /// Every export name, for error messages.
    pub exports: Vec<String>,
}

pub fn scan_exports<'a>(names: impl IntoIterator<Item = &'a str>) -> ExportScan {
    let mut scan = ExportScan::default();
    for name in names {
        scan.exports.push(name.to_string());
        let Some(rest) = name.strip_prefix(PACKAGE).and_then(|r| r.strip_prefix('/')) else {
            continue;
        };
        let (interface, version) = rest.split_once('@').unwrap_or((rest, ""));
        if !scan.versions.iter().any(|v| v == version) {
            scan.versions.push(version.to_string());
        }
        if interface == "describe" {
            scan.has_describe = true;
        } else if let Some(role) = Role::parse(interface) {
            scan.roles.push(role);
        }
    }
    scan
}

/// Semver compatibility with this host's contract: same major, and for 0.x the same minor.
pub fn is_compatible(version: &str) -> bool {
    let parse = |v: &str| -> Option<(u64, u64)> {
        let mut it = v.split(['.', '-', '+']);
        Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
    };
    match (parse(version), parse(VERSION)) {
        (Some((0, minor)), Some((0, host_minor))) => minor == host_minor,
        (Some((major, _)), Some((host_major, _))) => major == host_major,
        _ => false,
    }
}

/// The range of contract versions this host accepts, for error messages.
pub fn accepted_range() -> String {
    let mut parts = VERSION.split('.');
    match (parts.next(), parts.next()) {
        (Some("0"), Some(minor)) => format!("{PACKAGE}@0.{minor}.x"),
        (Some(major), _) => format!("{PACKAGE}@{major}.x"),
        _ => format!("{PACKAGE}@{VERSION}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wit_package_version_matches_constant() {
        let wit = include_str!("../../../wit/types.wit");
        assert!(
            wit.contains(&format!("package {PACKAGE}@{VERSION};")),
            "wit/types.wit and contract::VERSION disagree"
        );
    }

    #[test]
    fn compatibility_follows_semver_for_0x() {
        assert!(is_compatible("0.1.0"));
        assert!(is_compatible("0.1.7"));
        assert!(!is_compatible("0.2.0"));
        assert!(!is_compatible("1.0.0"));
        assert!(!is_compatible("garbage"));
        assert!(!is_compatible(""));
    }

    #[test]
    fn scan_finds_role_and_version() {
        let s = scan_exports([
            "launch:plugin/describe@0.1.0",
            "launch:plugin/slo-gate@0.1.0",
            "wasi:cli/run@0.2.0",
        ]);
        assert!(s.has_describe);
        assert_eq!(s.roles, vec![Role::SloGate]);
        assert_eq!(s.versions, vec!["0.1.0".to_string()]);
        assert_eq!(s.exports.len(), 3);
    }
}
