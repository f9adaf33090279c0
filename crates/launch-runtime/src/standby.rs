//! The next call's instance, made ahead. After a role call answers, a task of its own tears the
//! used instance down (the pooled slot's reset) and instantiates a fresh one for the same
//! sandbox; the plugin's next call with that sandbox starts at the plugin's code. Every instance
//! still serves exactly one call, and a spare made for one sandbox never serves another: the
//! grants and the HTTP source must be the very same (`Arc::ptr_eq`), the limits equal.
//!
//! Measured on a canary decision after an idle millisecond, as between a canary's windows:
//! store setup, instantiation and teardown took 26-38 µs of the call's 54-93 µs. With a spare,
//! the lab bench's decisions went from 68-84 µs to 48-69 µs (`cargo bench --bench lab`).

use std::sync::{Arc, Mutex};

use wasmtime::Store;

use crate::Runtime;
use crate::call::{Prepared, Sandbox};
use crate::capabilities::exchange::HttpSource;
use crate::plugin::{RoleInstance, RolePre};
use crate::state::PluginState;

/// One plugin's spare instance, when it has one.
#[derive(Clone, Default)]
pub(crate) struct Standby {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    spare: Option<Spare>,
    /// The sandbox of the last call. A spare is made only for a sandbox called twice in a row
    /// (a canary's stage, a gate's samples): a replay gives each call a sandbox of its own.
    last: Option<Sandbox>,
    /// A spare is being made.
    making: bool,
}

pub(crate) struct Spare {
    made_for: Sandbox,
    pub(crate) prepared: Prepared,
    pub(crate) instance: RoleInstance,
}

impl Standby {
    /// The spare, if it was made for `sandbox`. One made for another sandbox stays where it
    /// is (dropping it costs what this saves): the next `refresh` replaces it.
    pub(crate) fn take(&self, sandbox: &Sandbox) -> Option<Spare> {
        let mut inner = self.inner.lock().ok()?;
        if !inner
            .spare
            .as_ref()
            .is_some_and(|s| same(&s.made_for, sandbox))
        {
            return None;
        }
        inner.spare.take()
    }

    /// Drops `used`, and when `sandbox` served the call before this one too, makes the next
    /// spare for it on a task of the current tokio runtime, the teardown first. One spare is
    /// made at a time per plugin: each holds a pooled slot, and calls in parallel (a backtest)
    /// must not queue up teardowns that fill the pool. Otherwise `used` is dropped here.
    pub(crate) fn refresh(
        &self,
        used: Store<PluginState>,
        runtime: &Runtime,
        role: &RolePre,
        sandbox: &Sandbox,
        wasi: bool,
    ) {
        let Ok(tokio) = tokio::runtime::Handle::try_current() else {
            return drop(used);
        };
        let make = match self.inner.lock() {
            Ok(mut inner) => {
                let again = inner.last.as_ref().is_some_and(|l| same(l, sandbox));
                inner.last = Some(sandbox.clone());
                let make = again && !inner.making;
                inner.making |= make;
                make
            }
            Err(_) => false,
        };
        if !make {
            // Here, not on a task of its own: with back-to-back calls (a replay) the teardown
            // then ran on the other core while the next call ran, and instantiate + evaluate
            // took 26.2-44.4 µs instead of 21.4-32.9, slower in each of 4 alternating pairs
            // (`cargo bench --bench plugins`, calls on a worker).
            return drop(used);
        }
        let (standby, runtime, role) = (self.clone(), runtime.clone(), role.clone());
        let sandbox = sandbox.clone();
        tokio.spawn(async move {
            drop(used);
            // A spare that cannot be made (a full pool, a failing start) is no spare: the next
            // call instantiates, and fails, in its own right.
            let made = match Prepared::new(&runtime, &sandbox, wasi) {
                Ok(mut prepared) => match role.instantiate(&mut prepared.store).await {
                    Ok(instance) => Some(Spare {
                        made_for: sandbox,
                        prepared,
                        instance,
                    }),
                    Err(_) => None,
                },
                Err(_) => None,
            };
            // The one it replaces, if any, is dropped here, off every call's path.
            let replaced = standby.inner.lock().map(|mut inner| {
                inner.making = false;
                match made {
                    Some(spare) => inner.spare.replace(spare),
                    None => None,
                }
            });
            drop(replaced);
        });
    }
}

/// Whether a spare made for `a` may serve a call under `b`: the same grants, the same HTTP
/// source, the same limits.
fn same(a: &Sandbox, b: &Sandbox) -> bool {
    let http = match (&a.http, &b.http) {
        (HttpSource::Live, HttpSource::Live) => true,
        (HttpSource::Canned(x), HttpSource::Canned(y)) => Arc::ptr_eq(x, y),
        _ => false,
    };
    http && a.limits == b.limits && Arc::ptr_eq(&a.grants, &b.grants)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Limits;
    use crate::capabilities::Grants;

    #[test]
    fn a_spare_serves_only_the_very_sandbox_it_was_made_for() {
        let sandbox = Sandbox::default();
        assert!(
            same(&sandbox, &sandbox.clone()),
            "a clone shares its grants"
        );
        let equal_grants = Sandbox {
            grants: Arc::new(Grants::default()),
            ..sandbox.clone()
        };
        assert!(!same(&sandbox, &equal_grants), "equal grants, another Arc");
        let more_memory = Sandbox {
            limits: Limits {
                memory_bytes: sandbox.limits.memory_bytes * 2,
                ..sandbox.limits
            },
            ..sandbox.clone()
        };
        assert!(!same(&sandbox, &more_memory), "other limits");
        let canned = Sandbox {
            http: HttpSource::Canned(Arc::from(Vec::new())),
            ..sandbox.clone()
        };
        assert!(!same(&sandbox, &canned), "live vs canned");
        assert!(same(&canned, &canned.clone()), "the same canned answers");
        let other_canned = Sandbox {
            http: HttpSource::Canned(Arc::from(Vec::new())),
            ..sandbox.clone()
        };
        assert!(
            !same(&canned, &other_canned),
            "equal canned answers, another Arc"
        );
    }
}
