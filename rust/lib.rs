//! pysearch core: straight-line float programs, a fast chunked evaluator, reference functions
//! and exact ULP-error statistics. Pure Rust; the Python bindings live in `python.rs` behind the
//! `python` feature so that `cargo test` needs no libpython.

pub mod domain;
pub mod error;
pub mod errors;
pub mod eval;
pub mod float;
pub mod jit;
pub mod program;
pub mod reference;
pub mod stats;
pub mod ulp;

#[cfg(feature = "python")]
mod python;
