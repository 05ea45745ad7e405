//! Every pool-s3 integration test, against s3s-fs embedded in the test (real
//! HTTP on 127.0.0.1, no mocked SDK).
//!
//! One test binary, one module per concern: each binary links aws-sdk-s3 and the
//! test server, so one link instead of seven keeps the build (and its disk use)
//! small. `autotests = false` in Cargo.toml keeps cargo from also building each
//! module as its own binary.
//!
//! `spans.rs` is a binary of its own: it captures `tracing` output with a
//! thread-local subscriber, and a callsite that another test's thread registers
//! at the moment that subscriber is installed can keep a cached "not interested"
//! (tracing-core's interest cache), losing the span or event the test looks for.

// The test server module is also included by each example's `shared` module
// (as its binary does), so this crate holds three copies of it.
#![allow(clippy::duplicate_mod)]

mod common;

mod conformance;
mod examples;
mod faults;
mod observe;
mod ops;
mod strategy;
mod throttle;
