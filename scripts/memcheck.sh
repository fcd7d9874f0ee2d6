#!/usr/bin/env bash
# Memory safety under valgrind memcheck (Debian's `valgrind`): the core's
# Rust tests, then Node running the soak's mix of streams destroyed at
# random points, aborts and sendFile clients that hang
# up, and worker threads ended with I/O in flight. Fails on any invalid
# read or write or use of freed memory; for Node, blocks definitely lost
# with a frame in the addon are listed with their size (see node_part).
#
# Not checked: uninitialised values (`--undef-value-errors=no`). The kernel
# fills io_uring's buffers without a system call valgrind can see, so every
# byte read through the ring would be reported. Valgrind 3.19 does not know
# openat2 or cachestat either (ENOSYS): the engine then takes its fallbacks
# (open-then-check beneath a root, no inline sendfile), which this checks
# too. AddressSanitizer needs a nightly toolchain, which this project does
# not install.
#
#   bash scripts/memcheck.sh            # both parts
#   bash scripts/memcheck.sh rust|node  # one
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "memcheck: valgrind is not installed (apt-get install valgrind)"; exit 1; }

out=target/memcheck
mkdir -p "$out"
# --max-threads: a test binary running the engine's tests two at a time
# starts more threads over its life than valgrind's default table holds.
VG=(valgrind --tool=memcheck --undef-value-errors=no --leak-check=full
  --errors-for-leak-kinds=definite --show-leak-kinds=definite --num-callers=40
  --max-threads=4096)
# The open-file cache exists only where the kernel's openat2 resolves a path
# beneath a root; under valgrind openat2 is ENOSYS, so its tests, which
# check that files are cached, cannot pass there (sendFile then opens every
# time, which the send_body tests check under valgrind).
# One test leaks on purpose: memory the kernel may still write into is never
# freed, and that test checks that it is not (memcheck rightly calls it lost).
# And valgrind answers for /proc/self itself, so std's stat of it (the
# reference) and the engine's (the kernel's) differ there.
SKIP=(--skip http::open_file_cache:: --skip dropped_with_entries_in_the_kernel_it_leaks_them
  --skip relative_paths_and_special_files)
failed=0

rust() {
  echo "== memcheck: the core's tests"
  local bins
  bins=$(cargo test -p uring-fs-core --release --no-run --message-format=json 2>/dev/null |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{for(const l of s.split("\n")){if(!l)continue;const m=JSON.parse(l);if(m.reason==="compiler-artifact"&&m.executable&&m.profile.test)console.log(m.executable)}})')
  for bin in $bins; do
    local name log
    name=$(basename "$bin")
    log="$out/$name.log"
    if "${VG[@]}" --error-exitcode=99 --log-file="$log" "$bin" --test-threads=2 "${SKIP[@]}" >"$out/$name.out" 2>&1; then
      echo "ok   $name ($(grep -o 'ERROR SUMMARY: [0-9]* errors' "$log" | tail -1))"
    else
      echo "FAIL $name: see $log and $out/$name.out"
      failed=1
    fi
  done
}

node_part() {
  echo "== memcheck: Node with the addon (scripts/soak.js --seconds ${MEMCHECK_SECONDS:-30})"
  local log="$out/node.%p.log"
  rm -f "$out"/node.*.log
  # Node itself is not what is checked: only errors with a frame in the
  # addon count (V8's JIT code confuses memcheck's stack walks now and then).
  # The soak's own bars (RSS, timings) do not hold under valgrind, which
  # slows everything some 30 times and adds its own memory: its verdict is
  # shown, not counted; what counts here is memcheck's.
  "${VG[@]}" --trace-children=yes --log-file="$log" \
    node scripts/soak.js --seconds "${MEMCHECK_SECONDS:-30}" >"$out/node.out" 2>&1 ||
    echo "note: the soak under valgrind said: $(tail -1 "$out/node.out")"
  echo "== memcheck: worker threads ended with I/O in flight (scripts/worker-churn.js --rounds ${MEMCHECK_ROUNDS:-3})"
  "${VG[@]}" --trace-children=yes --log-file="$log" \
    node scripts/worker-churn.js --rounds "${MEMCHECK_ROUNDS:-3}" >"$out/node-workers.out" 2>&1 ||
    echo "note: worker-churn under valgrind said: $(tail -1 "$out/node-workers.out")"
  # Invalid accesses with a frame in the addon fail. Blocks definitely lost
  # are listed, not failed: under Node they come from what Node never frees
  # by design (a worker's environment torn down with promises unsettled and
  # the addon's per-environment references, objects alive at exit); the
  # soak's RSS bar is what judges memory growth. Each is shown with its size.
  local verdict
  verdict=$(node -e '
    const fs = require("fs"), dir = process.argv[1]
    let invalid = 0, lost = 0, lostBytes = 0
    for (const f of fs.readdirSync(dir).filter((f) => /^node\.\d+\.log$/.test(f))) {
      const blocks = fs.readFileSync(dir + "/" + f, "utf8").split(/\n==\d+== \n/)
      for (const b of blocks) {
        if (!/uring_fs|uring-fs/.test(b)) continue
        if (/Invalid (read|write|free)|Mismatched free|Source and destination overlap|Syscall param .* points to unaddressable/.test(b)) {
          invalid++
          console.error(b)
        } else if (/definitely lost/.test(b)) {
          lost++
          lostBytes += Number((/([\d,]+) bytes in/.exec(b) || [0, "0"])[1].replace(/,/g, ""))
          const frame = /by 0x[0-9A-F]+: (uring_fs_node::[^ (]+|napi_register_module_v1)/.exec(b)
          console.error("lost: " + (/[\d,]+ bytes in [\d,]+ blocks/.exec(b) || [""])[0] + " from " + (frame ? frame[1] : "?"))
        }
      }
    }
    console.log(invalid + " " + lost + " " + lostBytes)' "$out")
  read -r invalid lost lostBytes <<<"$verdict"
  echo "note: $lost leak records with a frame in the addon, $lostBytes bytes in all (listed above)"
  if [ "$invalid" = "0" ]; then
    echo "ok   node: no invalid memory access with a frame in the addon"
  else
    echo "FAIL node: $invalid invalid accesses with a frame in the addon (above)"
    failed=1
  fi
}

case "${1:-all}" in
  rust) rust ;;
  node) node_part ;;
  all) rust; node_part ;;
  *) echo "usage: $0 [rust|node]"; exit 2 ;;
esac
exit $failed
