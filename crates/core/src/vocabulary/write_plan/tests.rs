//! The write plan on made-up sources and results: how a source is cut, and
//! how short writes, zero writes, errors and syncs settle it.

use super::*;

fn source(lens: &[usize]) -> WriteSource {
    WriteSource::from_vecs(lens.iter().map(|&n| vec![7u8; n]).collect())
}

fn run_chain(plan: &mut Plan, src: &WriteSource, max: usize, results: &[i32]) -> Chain {
    let chain = plan.next_chain(src, max).expect("a chain");
    let (lens, synced) = chain.shape();
    plan.settle(src, &lens, synced, results).expect("settle");
    chain
}

#[test]
fn groups_respect_iov_max_skip_empty_parts_and_advance_offsets() {
    let mut lens = vec![0usize; 10];
    lens.extend(std::iter::repeat_n(3, 2500));
    lens.push(0);
    let src = source(&lens);
    let (groups, after) = cut_groups(src.parts(), Cursor::default(), 100, usize::MAX);
    let counts: Vec<usize> = groups.iter().map(|g| g.iov.0.len()).collect();
    assert_eq!(counts, [1024, 1024, 452]);
    let offsets: Vec<u64> = groups.iter().map(|g| g.offset).collect();
    assert_eq!(offsets, [100, 100 + 3072, 100 + 6144]);
    assert!(after.at_end(src.parts()));
    let (groups, _) = cut_groups(src.parts(), Cursor::default(), CURRENT_POSITION, 2);
    assert_eq!(groups.len(), 2);
    assert!(groups.iter().all(|g| g.offset == CURRENT_POSITION));
}

#[test]
fn a_short_write_resumes_inside_the_part_it_stopped_in() {
    let src = source(&[10, 20, 30]);
    let mut plan = Plan::new(1000, SyncMode::Full);
    // One write of 60 bytes plus a linked sync; only 15 went in, the
    // sync was cancelled with the rest of the chain.
    let chain = run_chain(&mut plan, &src, 8, &[15, -libc::ECANCELED]);
    assert_eq!(chain.fsync, Some(false));
    assert_eq!(plan.written(), 15);
    let next = plan.next_chain(&src, 8).expect("the rest");
    assert_eq!(next.groups.len(), 1);
    assert_eq!(next.groups[0].offset, 1015);
    assert_eq!(next.groups[0].len, 45);
    let first = next.groups[0].iov.0[0];
    assert_eq!(first.iov_len, 15);
    assert_eq!(first.iov_base as usize, src.parts()[1].0 + 5);
    let (lens, synced) = next.shape();
    plan.settle(&src, &lens, synced, &[45, 0]).expect("settle");
    assert_eq!(plan.written(), 60);
    assert!(plan.next_chain(&src, 8).is_none());
}

#[test]
fn zero_writes_are_retried_five_times_then_fail() {
    let src = source(&[4]);
    let mut plan = Plan::new(0, SyncMode::None);
    for _ in 0..MAX_ZERO_RETRIES {
        let chain = plan.next_chain(&src, 4).expect("chain");
        let (lens, synced) = chain.shape();
        plan.settle(&src, &lens, synced, &[0]).expect("retried");
    }
    // Progress resets the count.
    let chain = plan.next_chain(&src, 4).expect("chain");
    let (lens, synced) = chain.shape();
    plan.settle(&src, &lens, synced, &[1]).expect("progress");
    for _ in 0..MAX_ZERO_RETRIES {
        let chain = plan.next_chain(&src, 4).expect("chain");
        let (lens, synced) = chain.shape();
        plan.settle(&src, &lens, synced, &[0]).expect("retried");
    }
    let chain = plan.next_chain(&src, 4).expect("chain");
    let (lens, synced) = chain.shape();
    let err = plan
        .settle(&src, &lens, synced, &[0])
        .expect_err("gives up");
    assert_eq!(err.kind(), io::ErrorKind::WriteZero);
    assert_eq!(plan.written(), 1);
}

#[test]
fn an_error_after_full_writes_keeps_their_bytes() {
    let src = source(&[1500; 2048]);
    let mut plan = Plan::new(0, SyncMode::None);
    let chain = plan.next_chain(&src, 8).expect("chain");
    assert_eq!(chain.groups.len(), 2);
    let (lens, synced) = chain.shape();
    let err = plan
        .settle(&src, &lens, synced, &[1024 * 1500, -libc::ENOSPC])
        .expect_err("ENOSPC");
    assert_eq!(err.raw_os_error(), Some(libc::ENOSPC));
    assert_eq!(plan.written(), 1024 * 1500);
}

#[test]
fn the_sync_goes_alone_when_the_last_chain_is_full() {
    let src = source(&[1; 2048]);
    let mut plan = Plan::new(0, SyncMode::Data);
    let chain = run_chain(&mut plan, &src, 2, &[1024, 1024]);
    assert_eq!(chain.fsync, None);
    let chain = run_chain(&mut plan, &src, 2, &[0]);
    assert!(chain.groups.is_empty());
    assert_eq!(chain.fsync, Some(true));
    assert!(plan.next_chain(&src, 2).is_none());
    // An empty source with a sync is just the sync.
    let empty = WriteSource::empty();
    let plan = Plan::new(0, SyncMode::Full);
    let chain = plan.next_chain(&empty, 1).expect("sync");
    assert!(chain.groups.is_empty() && chain.fsync == Some(false));
    assert!(Plan::new(0, SyncMode::None).next_chain(&empty, 1).is_none());
}

#[test]
#[cfg(target_pointer_width = "64")]
fn huge_parts_are_cut_at_max_write_bytes() {
    // Cutting only computes addresses: made-up ones do.
    let parts = [(0x1000, 3 * MAX_WRITE_BYTES + 5), (0x10, 0), (0x2000, 1)];
    let (groups, _) = cut_groups(&parts, Cursor::default(), 0, usize::MAX);
    let lens: Vec<u64> = groups.iter().map(|g| g.len).collect();
    let m = MAX_WRITE_BYTES as u64;
    assert_eq!(lens, [m, m, m, 6]);
    let last: Vec<(usize, usize)> = groups[3]
        .iov
        .0
        .iter()
        .map(|v| (v.iov_base as usize, v.iov_len))
        .collect();
    assert_eq!(last, [(0x1000 + 3 * MAX_WRITE_BYTES, 5), (0x2000, 1)]);
}
