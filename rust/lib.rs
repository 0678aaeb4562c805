//! pysearch core: straight-line float programs, a fast chunked evaluator, reference functions
//! and exact ULP-error statistics. Pure Rust; the Python bindings live in `python.rs` behind the
//! `python` feature so that `cargo test` needs no libpython.

pub mod constfit;
pub mod domain;
pub mod error;
pub mod errors;
pub mod eval;
pub mod fit;
pub mod float;
pub mod fpenv;
// jit.rs is assembler written through dynasm!: its macro expansion binds operands to
// underscore-prefixed names and ends arms without `;`, and register/offset arithmetic casts by
// design; these pedantic lints are allowed for that module only (from here, so jit.rs itself,
// under active work, carries no lint attributes).
#[allow(
    clippy::used_underscore_binding,
    clippy::semicolon_if_nothing_returned,
    clippy::bool_to_int_with_if,
    clippy::doc_markdown,
    clippy::missing_panics_doc,
    clippy::wildcard_imports
)]
pub mod jit;
pub mod lawfit;
pub mod program;
pub mod reference;
pub mod stats;
pub mod ulp;

#[cfg(feature = "python")]
mod python;
