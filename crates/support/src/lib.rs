//! Support for burn-gumbel's examples, integration tests and benchmarks (a dev-dependency, not
//! published): the choice of backend ([`backend`]) and the command-line plumbing ([`cli`]).
//!
//! The backends are cargo features (`flex` by default, `ndarray`, `wgpu`), forwarded by the
//! packages that use this one.
#![warn(missing_docs)]

pub mod backend;
pub mod cli;

pub use backend::{
    backend_device, enabled_backends, reference_device, rng_lock, select_device,
    select_device_or_exit,
};
pub use cli::{run_cli, run_cli_with_matches};
