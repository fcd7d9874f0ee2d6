#!/usr/bin/env bash
# The project's test command (npm test): the Rust tests (with and without the
# io_uring backend compiled in), the type check, and the ava suite on both
# backends. Fails on the first failure.
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
