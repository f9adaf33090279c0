//! Plugins as OCI artifacts. `push` publishes a component (and its SSHSIG signature, as a
//! referrer) under a tag; `resolve` turns a tag into the manifest digest a lock records;
//! `pull` fetches by digest and checks every byte against it; the cache keeps what was pulled
//! by digest, so runs after the first need no registry. Deciding what to trust (signatures,
//! locks) is the engine's; this crate only moves and checks bytes.

pub mod auth;
pub mod cache;
pub mod client;
pub mod package;
pub mod reference;

pub use cache::{Cache, Cached};
pub use client::{Pulled, Pushed, Registry};
pub use package::Package;
pub use reference::PluginRef;
