# Developer tasks. `just` lists them.

set shell := ["bash", "-euo", "pipefail", "-c"]

# One warm target directory outside the clone, shared by every build and CI run on this machine.
export CARGO_TARGET_DIR := env_var_or_default("CARGO_TARGET_DIR", env_var("HOME") / ".cache/launch-host/target")
plugins_target := env_var_or_default("LAUNCH_HOST_PLUGINS_TARGET", env_var("HOME") / ".cache/launch-host/plugins-target")
# Tests share one compiled-artifact cache, so each plugin compiles once per machine.
export LAUNCH_HOST_CACHE_DIR := env_var_or_default("LAUNCH_HOST_CACHE_DIR", env_var("HOME") / ".cache/launch-host/test-compiled")

default:
    @just --list

# Install the wasm toolchain and plugin build tools (idempotent)
setup:
    scripts/setup.sh

# Install what the tests start and drive too: moto, Prometheus, docker-registry, PostgreSQL,
# Chromium, the flag services (idempotent; quick when they are there)
setup-tests:
    scripts/setup.sh --tests

# Build every stock plugin into plugins/*.wasm
build-plugins:
    scripts/build-plugins.sh "{{plugins_target}}"

# Build the misbehaving test plugins into tests/plugins/out/*.wasm
build-test-plugins:
    scripts/build-plugins.sh "{{plugins_target}}" --test-plugins

# Build the host (debug)
build:
    cargo build -p launch-host

# Run every test (every crate's unit tests, the end-to-end tests, the pty tests, the stock
# plugins' own unit tests on the host): builds plugins and test plugins first
test: setup-tests build-plugins build-test-plugins
    cargo test --quiet --manifest-path plugins/Cargo.toml --workspace --target-dir "{{plugins_target}}"
    cargo test --workspace --no-fail-fast

# Benchmarks (release build): plugin loads and calls; recording and replay; signatures; 50 web viewers; the embedded run, the probe vs wrk, reaction time
bench: build-plugins
    command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk) || echo "wrk unavailable: the probe is shown without its reference"
    cargo bench -p launch-host --bench plugins -- --plugins "{{justfile_directory()}}/plugins"
    cargo bench -p launch-host --bench lab -- --plugins "{{justfile_directory()}}/plugins"
    cargo bench -p launch-host --bench journal -- --plugins "{{justfile_directory()}}/plugins"
    cargo bench -p launch-host --bench trust -- --plugins "{{justfile_directory()}}/plugins"
    cargo bench -p launch-host --bench web
    cargo bench -p launch-host --bench playbook
    cargo bench -p launch-host --bench fleet

# Fuzz the runbook reader, the journal reader, plugin-result handling, granted folders and file sizes (SECS per target)
fuzz SECS="300":
    LAUNCH_HOST_FUZZ_SECS={{SECS}} cargo test -p launch-engine --test fuzz -- --nocapture --test-threads 1

# The workspace-hack crate is what `cargo hakari generate` makes of today's dependencies,
# every crate depends on it, and it unifies every feature (cargo install cargo-hakari)
hakari-check:
    cargo hakari generate --diff
    cargo hakari manage-deps --dry-run
    cargo hakari verify

# Formatting and lints
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# The quick start's first command: build the plugins and run the whole playbook on the embedded default
demo: build-plugins
    cargo run --quiet -p launch-host -- plugins list --plugins plugins
    cargo run --quiet -p launch-host -- run --plugins plugins --yes
