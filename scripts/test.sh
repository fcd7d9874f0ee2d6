#!/usr/bin/env bash
# The project's test command (npm test): the Rust tests (with and without the
# io_uring backend compiled in), the type check, the ava suite on both
# backends (with the differential fuzzer against fs), and Node's own fs
# stream tests (__test__/node-fs) on both backends under this Node and
# Node 22, 24 and 26. Fails on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo test (workspace, io_uring + fallback)"
cargo test --workspace
echo "== cargo test (core without the io_uring feature: the non-Linux code path)"
cargo test -p uring-fs-core --no-default-features
echo "== tsc --noEmit"
npx tsc --noEmit -p tsconfig.json
npx tsc --noEmit -p __test__/tsconfig.json
echo "== ava (backend: auto, io_uring here)"
npx ava
echo "== ava (backend: fallback)"
URING_FS_BACKEND=fallback npx ava
echo "== Node's fs stream tests (both backends; Node ${URING_FS_NODE_VERSIONS:-22,24,26} too)"
node __test__/node-fs/run.js --node "${URING_FS_NODE_VERSIONS:-22,24,26}"
