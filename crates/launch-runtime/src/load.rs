//! Loading a plugin file: what its first bytes say it is, compiling it (through the cache),
//! checking its contract version and role, pre-linking it, and asking it to describe itself.

use std::path::Path;
use std::time::Instant;

use sha2::{Digest as _, Sha256};
use wasmtime::component::InstancePre;

use crate::bindings;
use crate::bounds::Bound;
use crate::call::{Callee, call};
use crate::contract::{self, Role};
use crate::error::LoadError;
use crate::state::PluginState;
use crate::types;
use crate::{LoadSource, Runtime};

use crate::plugin::{LoadReport, Plugin, PluginInfo, RolePre, Sandbox};

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

pub(crate) async fn load(
    runtime: &Runtime,
    path: &Path,
    use_cache: bool,
) -> Result<Plugin, LoadError> {
    let started = Instant::now();
    let path = path.to_path_buf();
    let read = |source| LoadError::Read {
        path: path.clone(),
        source,
    };
    let kind = |head: &[u8]| match classify(head) {
        FileKind::Component => Ok(()),
        FileKind::CoreModule => Err(LoadError::CoreModule { path: path.clone() }),
        FileKind::NotWasm(found) => Err(LoadError::NotWasm {
            path: path.clone(),
            found,
        }),
    };
    let invalid = |e: wasmtime::Error| LoadError::Invalid {
        path: path.clone(),
        reason: format!("{e:#}"),
    };
    let cache = &runtime.inner.cache;
    let engine = &runtime.inner.engine;
    // A warm load only needs the file's digest (remembered beside the compiled code while
    // the file is unchanged), not its bytes.
    let warm = if use_cache {
        let (file, memo) = (path.clone(), cache.dir().map(|d| d.join("digests")));
        let d = tokio::task::spawn_blocking(move || crate::digest::of_file(&file, memo.as_deref()))
            .await
            .map_err(|e| read(std::io::Error::other(e)))?
            .map_err(read)?;
        kind(&d.head)?;
        cache
            .cached(engine, &d.sha256)
            .map(|c| (c, d.sha256, d.size))
    } else {
        None
    };
    let (component, source, digest, size) = match warm {
        Some((component, digest, size)) => (component, LoadSource::Cached, digest, size),
        None => {
            // Compiled from the bytes read now, digest and all: the file may have changed
            // since it was hashed.
            let bytes = {
                let path = path.clone();
                tokio::task::spawn_blocking(move || crate::limits::read_component(&path))
                    .await
                    .map_err(|e| read(std::io::Error::other(e)))?
                    .map_err(read)?
            };
            kind(&bytes)?;
            let digest = hex::encode(Sha256::digest(&bytes));
            // Not in the cache (or asked not to use it): this is the slow load.
            if let Some(tell) = runtime.inner.on_compile.get() {
                tell(&path, bytes.len() as u64);
            }
            let (component, source) = cache
                .compile(engine, &bytes, &digest, use_cache)
                .await
                .map_err(invalid)?;
            (component, source, digest, bytes.len() as u64)
        }
    };

    let component_type = component.component_type();
    let network = crate::capabilities::network_imports(
        component_type
            .imports(&runtime.inner.engine)
            .map(|(name, _)| name),
    );
    let wasi = component_type
        .imports(&runtime.inner.engine)
        .any(|(name, _)| name.starts_with("wasi:"));
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
    let describe_once = |mut store| {
        let describe = describe.clone();
        async move {
            let info: wasmtime::Result<_> = async {
                let instance = describe.instantiate_async(&mut store).await?;
                instance
                    .launch_plugin_describe()
                    .call_describe(&mut store)
                    .await
            }
            .await;
            (info, store)
        }
    };
    let callee = Callee {
        plugin: &file_name,
        function: "describe",
        wasi,
    };
    let described = call(runtime, callee, &sandbox, None, describe_once, drop)
        .await
        .map_err(|failure| LoadError::Describe {
            path: path.clone(),
            failure: Box::new(failure),
        })?;
    let info = host_info(described.value, role, &path)?;
    let version = scan.versions.first().cloned().unwrap_or_default();
    Ok(Plugin {
        size,
        digest,
        contract: version,
        network,
        wasi,
        info,
        load,
        runtime: runtime.clone(),
        describe,
        role: role_pre,
        standby: Default::default(),
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
