//! A panic's message, from a plugin built without WASI (`wasm32-unknown-unknown`, as the stock
//! plugins are). std's own hook writes it to stderr, which such a build does not have, so the
//! host would only see the trap that follows. This hook logs it at error level instead, as
//! `panicked at src/lib.rs:9:5: the message`, and the host names it in the call's failure.
//!
//! It is installed by a constructor, which wit-bindgen's exports run before the plugin's code
//! on each fresh instance.

#[used]
#[unsafe(link_section = ".init_array")]
static INSTALL: extern "C" fn() = install;

extern "C" fn install() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map_or_else(|| "an unknown place".into(), |l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
        let message = info.payload_as_str().unwrap_or("a panic without a message");
        crate::log::log(crate::log::Level::Error, &format!("panicked at {location}: {message}"));
    }));
}
