//! A plugin built against a future, incompatible contract version (`launch:plugin@9.0.0`).
wit_bindgen::generate!({ path: "wit", world: "plugin" });

struct Plugin;

impl exports::launch::plugin::describe::Guest for Plugin {
    fn describe() -> String {
        "from the future".into()
    }
}

export!(Plugin);
