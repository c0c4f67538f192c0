//! Cross-backend and statistical tests of burn-gumbel.
//!
//! Every test here runs once per enabled backend feature (`flex`, `ndarray`, `wgpu`), through
//! [`device_tests!`]. Statistical tests use fixed seeds; each states its tolerance in standard
//! errors, so that it is neither flaky nor vacuous.

#[macro_use]
mod support;

mod cross_backend;
mod estimators;
mod fused;
mod gradients;
mod gumbel_max;
mod half;
mod keyed;
mod layer;
mod noise;
mod numerics;
mod relaxed_bernoulli;
mod relaxed_k_hot;
mod relaxed_one_hot;
mod samples;
mod tokens;
