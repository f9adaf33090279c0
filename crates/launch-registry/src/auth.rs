//! Registry credentials, from where every OCI tool looks: `LAUNCH_HOST_REGISTRY_USERNAME` and
//! `LAUNCH_HOST_REGISTRY_PASSWORD`, else docker's config (`$DOCKER_CONFIG/config.json` or
//! `~/.docker/config.json`: `auths` and credential helpers), else none. A credential is held
//! in memory for the requests and never written, logged or put in an error: messages name only
//! where it came from.

use std::io::Read as _;

use docker_credential::DockerCredential;
use oci_client::secrets::RegistryAuth;

/// The docker config is a small JSON file; anything bigger is not one.
const CONFIG_MAX: u64 = 1 << 20;

pub const USERNAME_VAR: &str = "LAUNCH_HOST_REGISTRY_USERNAME";
pub const PASSWORD_VAR: &str = "LAUNCH_HOST_REGISTRY_PASSWORD";

/// A credential and where it came from (for messages).
pub struct Credentials {
    pub auth: RegistryAuth,
    pub source: String,
}

/// The credentials for `registry` (`host[:port]`).
pub fn for_registry(registry: &str) -> Credentials {
    if let (Ok(user), Ok(password)) = (std::env::var(USERNAME_VAR), std::env::var(PASSWORD_VAR))
        && !user.is_empty()
    {
        return Credentials {
            auth: RegistryAuth::Basic(user, password),
            source: format!("{USERNAME_VAR} / {PASSWORD_VAR}"),
        };
    }
    if let Some((path, text)) = docker_config() {
        match docker_credential::get_credential_from_reader(text.as_bytes(), registry) {
            Ok(DockerCredential::UsernamePassword(user, password)) => {
                return Credentials {
                    auth: RegistryAuth::Basic(user, password),
                    source: format!("{} (auths.\"{registry}\")", path.display()),
                };
            }
            Ok(DockerCredential::IdentityToken(token)) => {
                return Credentials {
                    auth: RegistryAuth::Bearer(token),
                    source: format!("{} (identity token)", path.display()),
                };
            }
            Err(_) => {}
        }
    }
    Credentials {
        auth: RegistryAuth::Anonymous,
        source: "none (anonymous)".into(),
    }
}

fn docker_config() -> Option<(std::path::PathBuf, String)> {
    let dir = std::env::var_os("DOCKER_CONFIG")
        .map(std::path::PathBuf::from)
        .or_else(|| dirs::home_dir().map(|h| h.join(".docker")))?;
    let path = dir.join("config.json");
    let mut text = String::new();
    std::fs::File::open(&path)
        .ok()?
        .take(CONFIG_MAX)
        .read_to_string(&mut text)
        .ok()?;
    Some((path, text))
}
