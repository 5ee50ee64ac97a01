//! Compile tests of the attribute macros: `ui/pass` programs must build and run, and each
//! `ui/fail/<macro>_<problem>.rs` must fail with the error in its `.stderr` snapshot.
//!
//! Regenerate the snapshots with `TRYBUILD=overwrite cargo test --test ui` and review the diff
//! like code: every message must point at the offending token.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}
