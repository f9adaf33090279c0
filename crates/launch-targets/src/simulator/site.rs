//! The site build the embedded default deploys: an `index.html` that carries the StatusBoardV2
//! markers and content-hashed assets, as a frontend build would produce.

use std::path::Path;

use sha2::{Digest, Sha256};

/// Writes a site build into `dir`: the StatusBoardV2 build, or the legacy board (no V2 markers)
/// that is live before a launch. `label` shows which build is live.
pub fn write_statusboard_build(dir: &Path, label: &str, v2: bool) -> std::io::Result<()> {
    let id = if v2 { "StatusBoardV2" } else { "StatusBoard" };
    let js = format!(
        "window.STATUS_BOARD_BUILD={label:?};document.getElementById('{id}').dataset.ready='1';\n"
    );
    let css = ".status-board{display:grid;grid-template-columns:repeat(5,1fr)}\n";
    let hash = |s: &str| hex::encode(&Sha256::digest(s.as_bytes())[..4]);
    let (js_name, css_name) = (
        format!("app.{}.js", hash(&js)),
        format!("app.{}.css", hash(css)),
    );
    let html = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{id}</title>\
         <link rel=\"stylesheet\" href=\"/assets/{css_name}\"></head>\n\
         <body><div id=\"{id}\" class=\"status-board\" data-build=\"{label}\"></div>\
         <script src=\"/assets/{js_name}\"></script></body></html>\n"
    );
    std::fs::create_dir_all(dir.join("assets"))?;
    std::fs::write(dir.join("index.html"), html)?;
    std::fs::write(dir.join("assets").join(js_name), js)?;
    std::fs::write(dir.join("assets").join(css_name), css)?;
    Ok(())
}

pub use crate::store::{cache_control, content_type};
