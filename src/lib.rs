//! burn-gumbel's examples (`examples/`), cross-backend and statistical tests (`tests/gumbel/`)
//! and benchmarks (`benches/`). This library is empty: what they share is in the
//! `burn-gumbel-support` crate (`crates/support`), a dev-dependency.
