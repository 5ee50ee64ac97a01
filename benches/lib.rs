//! Criterion benchmarks of `resilience`, each measured side by side with the crate a user would
//! pick instead. Run them with `cargo bench -p resilience-benches`; `benches/table.sh` prints the
//! ratio tables the README quotes.
