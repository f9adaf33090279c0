#!/usr/bin/env bash
# Builds the stock plugins into plugins/*.wasm, or with --test-plugins the misbehaving test
# plugins into tests/plugins/out/*.wasm. Stock Rust plugins build for wasm32-unknown-unknown and
# become components with `wasm-tools component new`: they need no WASI, and without it a call is
# 1.5-4 us faster (no WASI context to build, no WASI imports to lower at instantiation; a
# panic's message goes to the log instead of stderr: plugins/rust/sdk/src/panic.rs). Test
# plugins build for wasm32-wasip2, as a plugin that uses WASI does. Python plugins build with
# componentize-py and JavaScript plugins with componentize-js (both rebuilt only when their
# sources change).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# pip puts componentize-py here; a fresh shell (pyenv, --user installs) may not have it on PATH.
PATH="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$PATH"
target_dir=$(realpath -m "${1:?usage: build-plugins.sh TARGET_DIR [--test-plugins]}")
mode=${2:-stock}
# The stock plugins' target: without rustup's wasm32-unknown-unknown (Debian's toolchain, DESIGN
# §7) they build for wasm32-wasip2, where they work the same and instantiate a little slower.
pure=wasm32-unknown-unknown
rustup target list --installed 2>/dev/null | grep -qx "$pure" || pure=wasm32-wasip2

# cargo_wasm TARGET MANIFEST [CARGO_ARGS...]. Cargo runs in the workspace's folder, so its
# .cargo/config.toml applies (plugins/ has one); a subshell, so the script's folder stays as it was.
cargo_wasm() (
    local target=$1 manifest=$2
    shift 2
    cd "$(dirname "$manifest")"
    if rustup target list --installed 2>/dev/null | grep -qx "$target"; then
        cargo build --quiet --release --target "$target" --manifest-path "$manifest" --target-dir "$target_dir" "$@"
    else
        # Debian's toolchain (DESIGN §7): build std for the target ourselves. (Cargo adds
        # this variable's flags to those of .cargo/config.toml.)
        RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 \
        CARGO_TARGET_WASM32_WASIP2_RUSTFLAGS="-L native=/usr/lib/wasm32-wasi" \
            /usr/bin/cargo build --quiet --release --target "$target" -Zbuild-std=std,panic_abort \
            --manifest-path "$manifest" --target-dir "$target_dir" "$@"
    fi
)

# install_wasm TARGET CRATE DEST [NAME]: copies the crate's build to DEST/NAME.wasm (NAME is the
# crate's by default) when it changed; a core module of the pure target becomes a component.
install_wasm() {
    local target=$1 crate=$2 dest=$3 name=${4:-$2}
    local built="$target_dir/$target/release/${crate//-/_}.wasm"
    [ -f "$built" ] || built="$target_dir/$target/release/$crate.wasm"
    if [ "$target" = wasm32-unknown-unknown ]; then
        wasm-tools component new "$built" -o "$target_dir/$name.component.wasm"
        built="$target_dir/$name.component.wasm"
    fi
    cmp -s "$built" "$dest/$name.wasm" || cp "$built" "$dest/$name.wasm"
}

if [ "$mode" = "--test-plugins" ]; then
    out="$root/tests/plugins/out"
    mkdir -p "$out"
    cargo_wasm wasm32-wasip2 "$root/tests/plugins/Cargo.toml"
    for crate in hostile future-contract not-a-plugin bundle-budget; do install_wasm wasm32-wasip2 "$crate" "$out"; done
    # The hostile plugin once more without WASI, as the stock plugins are built.
    cargo_wasm "$pure" "$root/tests/plugins/Cargo.toml" -p hostile
    install_wasm "$pure" hostile "$out" hostile-no-wasi
    echo "test plugins: $(ls "$out"/*.wasm | wc -l) built in tests/plugins/out/"
    exit 0
fi

# Python plugins: one folder each with app.py and world.txt naming the WIT world.
build_python() {
    for dir in "$root"/plugins/python/*/; do
        name=$(basename "$dir")
        world=$(cat "$dir/world.txt")   # the WIT world the plugin implements, e.g. slo-gate-plugin
        out="$root/plugins/$name.wasm"
        stamp="$target_dir/python-$name.sha256"
        sum=$(cat "$root"/wit/*.wit "$dir"/*.py | sha256sum | cut -d' ' -f1)
        if [ -f "$out" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$sum" ]; then continue; fi
        (cd "$dir" && componentize-py -d "$root/wit" -w "$world" componentize app -o "$out" >/dev/null)
        echo "$sum" > "$stamp"
    done
}
# JavaScript plugins: one folder each with app.js and world.txt, built with componentize-js.
build_js() {
    componentize_js="$root/plugins/js/tools/node_modules/.bin/componentize-js"
    for dir in "$root"/plugins/js/*/; do
        [ -f "$dir/app.js" ] || continue
        name=$(basename "$dir")
        world=$(cat "$dir/world.txt")
        out="$root/plugins/$name.wasm"
        stamp="$target_dir/js-$name.sha256"
        sum=$(cat "$root"/wit/*.wit "$dir"/*.js | sha256sum | cut -d' ' -f1)
        if [ -f "$out" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$sum" ]; then continue; fi
        [ -x "$componentize_js" ] || { echo "build-plugins: run scripts/setup.sh first (componentize-js)" >&2; exit 1; }
        (cd "$dir" && "$componentize_js" app.js --wit "$root/wit" --world-name "$world" -o "$out" >/dev/null)
        echo "$sum" > "$stamp"
    done
}

# The Python and JavaScript plugins build beside the Rust ones: componentize-py and
# componentize-js each use one core, while cargo uses what is left.
mkdir -p "$target_dir"
build_python & python_pid=$!
build_js & js_pid=$!
failed=0
cargo_wasm "$pure" "$root/plugins/Cargo.toml" || failed=1
for dir in "$root"/plugins/rust/*/; do
    crate=$(basename "$dir")
    [ "$crate" = sdk ] && continue
    [ "$failed" = 0 ] && install_wasm "$pure" "$crate" "$root/plugins"
done
wait "$python_pid" || { echo "build-plugins: a Python plugin failed to build (above)" >&2; failed=1; }
wait "$js_pid" || { echo "build-plugins: a JavaScript plugin failed to build (above)" >&2; failed=1; }
[ "$failed" = 0 ] || exit 1
echo "plugins: $(ls "$root"/plugins/*.wasm | wc -l) built in plugins/"
