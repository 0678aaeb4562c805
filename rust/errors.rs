//! The core's one error type. Every fallible function of the core returns
//! `Result<_, CoreError>`; the binding module (`python.rs`) turns each variant into one named
//! Python exception (one `From<CoreError> for PyErr`), so a new failure needs a variant here and
//! one arm there, and nothing else.

use std::fmt;

/// Why the core refused or failed a call. Each variant carries the full one-line message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CoreError {
    /// A program failed validation (Python: `pysearch.ProgramError`).
    InvalidProgram(String),
    /// A float32 domain or key range was rejected: NaN or reversed bounds, keys out of range
    /// (Python: `pysearch.DomainError`).
    Domain(String),
    /// No built-in target has this name (Python: `pysearch._core.UnknownTarget`).
    UnknownTarget(String),
    /// Arguments valid one by one that do not fit together, such as a program's number of
    /// inputs and the rows of `x`, or sample arrays of different lengths (Python: `ValueError`).
    Mismatch(String),
    /// An output too large to address or to allocate (Python: `MemoryError`).
    Alloc(String),
    /// The worker threads could not be started (Python: `pysearch.WorkerPoolError`).
    WorkerPool(String),
    /// A bug: the core panicked (Python: `RuntimeError`).
    Internal(String),
}

impl CoreError {
    /// The message, without the kind.
    pub fn message(&self) -> &str {
        match self {
            CoreError::InvalidProgram(m)
            | CoreError::Domain(m)
            | CoreError::UnknownTarget(m)
            | CoreError::Mismatch(m)
            | CoreError::Alloc(m)
            | CoreError::WorkerPool(m)
            | CoreError::Internal(m) => m,
        }
    }

    /// The same error with `context: ` before its message (e.g. which program of a batch).
    #[must_use]
    pub fn context(self, context: &str) -> CoreError {
        let with = |m: String| format!("{context}: {m}");
        match self {
            CoreError::InvalidProgram(m) => CoreError::InvalidProgram(with(m)),
            CoreError::Domain(m) => CoreError::Domain(with(m)),
            CoreError::UnknownTarget(m) => CoreError::UnknownTarget(with(m)),
            CoreError::Mismatch(m) => CoreError::Mismatch(with(m)),
            CoreError::Alloc(m) => CoreError::Alloc(with(m)),
            CoreError::WorkerPool(m) => CoreError::WorkerPool(with(m)),
            CoreError::Internal(m) => CoreError::Internal(with(m)),
        }
    }
}

impl fmt::Display for CoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for CoreError {}

/// Human-readable byte count.
#[allow(clippy::cast_precision_loss)] // a rounded display value
fn human_bytes(bytes: u128) -> String {
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

/// The `Alloc` error for an output `what` of `count` values of `dtype` (`size` bytes each).
pub fn too_big(what: &str, count: u128, size: usize, dtype: &str) -> CoreError {
    CoreError::Alloc(format!(
        "cannot allocate {what}: {count} {dtype} values ({})",
        human_bytes(count.saturating_mul(size as u128))
    ))
}

/// `count` as a length, when `count` values of `size` bytes can be addressed at all (at most
/// `isize::MAX` bytes); else the `Alloc` error naming the output and its size.
pub fn alloc_len(what: &str, count: u128, size: usize, dtype: &str) -> Result<usize, CoreError> {
    match count.checked_mul(size as u128) {
        Some(b) if b <= isize::MAX.unsigned_abs() as u128 => {
            usize::try_from(count).map_err(|_| too_big(what, count, size, dtype))
        }
        _ => Err(too_big(what, count, size, dtype)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_context() {
        let e = CoreError::InvalidProgram("unknown opcode 99".into()).context("program 3");
        assert_eq!(e.to_string(), "program 3: unknown opcode 99");
        assert!(matches!(e, CoreError::InvalidProgram(_)));
        let boxed: Box<dyn std::error::Error> = Box::new(CoreError::Domain("NaN".into()));
        assert_eq!(boxed.to_string(), "NaN");
    }

    #[test]
    fn sizes_beyond_the_address_space_are_refused_by_name() {
        assert_eq!(alloc_len("out", 10, 4, "float32"), Ok(10));
        let e = alloc_len("the output", u128::from(u64::MAX), 8, "float64").unwrap_err();
        assert!(matches!(e, CoreError::Alloc(_)));
        assert!(
            e.to_string().starts_with("cannot allocate the output: "),
            "{e}"
        );
        assert!(
            e.to_string().ends_with("EiB)") || e.to_string().contains("EiB"),
            "{e}"
        );
        assert_eq!(human_bytes(512), "512 bytes");
        assert_eq!(human_bytes(3 << 20), "3.0 MiB");
    }
}
