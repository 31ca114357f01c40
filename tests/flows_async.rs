//! Every flow test of `flows.rs`, run again on the async face: the blocking `Mfa` and the
//! async `AsyncMfa` share one orchestration, and both must pass the same flow tests. The
//! shared world (`common::TestMfa`) picks `AsyncMfa`, on a multi-threaded tokio runtime,
//! because this test binary's name ends in `_async`.

#![cfg(feature = "async")]

#[path = "flows.rs"]
mod flows;

#[test]
fn this_binary_runs_the_async_face() {
    let w = flows::common::world();
    assert!(w.mfa.is_async());
}
