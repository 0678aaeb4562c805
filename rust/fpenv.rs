//! The floating-point mode the core computes in, whatever the process set.
//!
//! Every result of the core (evaluation, ULP errors, exhaustive verification, constant
//! fitting) is defined in IEEE 754 arithmetic: round to nearest, ties to even; subnormal inputs
//! and results kept (no flush-to-zero, no denormals-are-zero); exceptions masked (no traps). On
//! `x86_64` that mode lives in each thread's MXCSR register, and a process can change it behind
//! our back: loading a shared object built with `gcc -ffast-math` (its `crtfastmath.o`
//! constructor sets FTZ and DAZ), `torch.set_flush_denormal(True)`, `fesetround`, ... Threads
//! inherit the register from the thread that creates them, so the worker pool may start in
//! such a mode too.
//!
//! [`IeeeMode`] is the RAII guard: it saves MXCSR, clears FTZ/DAZ, sets round-to-nearest and
//! masks every exception, and on drop restores the caller's mode (keeping the status flags the
//! work raised, as if the caller's thread had run it in IEEE mode). [`set_thread_ieee`] puts a
//! worker thread of the core's own pool in IEEE mode for good: no one else's code runs on those
//! threads, so there is nothing to restore. `python.rs`'s `run_steps`, the one place every
//! Python call's work runs, uses both (see docs/architecture.md).
//!
//! Work inside the guard must read its inputs from memory and write its results to memory, as
//! all core work does (slices in, slices out, through rayon jobs): the compiler takes float
//! arithmetic to have no side effects and may move register-only arithmetic across the
//! `ldmxcsr` of a mode switch, but not a load or store.
//!
//! The guard changes MXCSR only when it is not already in IEEE mode, so the usual cost is one
//! `stmxcsr`. Only SSE/AVX arithmetic is affected (`x86_64` Rust computes `f32`/`f64` there,
//! never on the x87 unit). On other architectures these functions do nothing: the core then
//! computes in whatever mode the thread is in (aarch64's FPCR flush-to-zero is not handled).

use std::marker::PhantomData;

/// MXCSR bits: status flags (sticky), exception masks, rounding control, FTZ, DAZ.
pub const FLAGS: u32 = 0x3f;
/// Denormals-are-zero: subnormal inputs are read as zero.
pub const DAZ: u32 = 1 << 6;
/// All six exception masks (invalid, denormal, divide-by-zero, overflow, underflow, precision).
pub const MASKS: u32 = 0x3f << 7;
/// Rounding control: 00 nearest, 01 down, 10 up, 11 toward zero.
pub const ROUNDING: u32 = 0b11 << 13;
/// Flush-to-zero: subnormal results are replaced by zero.
pub const FTZ: u32 = 1 << 15;
/// MXCSR in IEEE mode, less the status flags: every exception masked, round to nearest, no
/// FTZ/DAZ (the power-on default).
pub const IEEE: u32 = MASKS;

/// The calling thread's MXCSR (`x86_64`), `None` elsewhere.
pub fn control() -> Option<u32> {
    #[cfg(target_arch = "x86_64")]
    {
        Some(read())
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        None
    }
}

/// Whether `mxcsr` (less its status flags) is IEEE mode.
pub const fn is_ieee(mxcsr: u32) -> bool {
    mxcsr & !FLAGS == IEEE
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
fn read() -> u32 {
    let mut v: u32 = 0;
    // SAFETY: stmxcsr stores the 32-bit register to the local `v`; nothing else is touched.
    unsafe {
        std::arch::asm!("stmxcsr [{}]", in(reg) &raw mut v, options(nostack, preserves_flags));
    }
    v
}

/// Loads `v` into MXCSR. Callers pass a value read from MXCSR, or one with only documented
/// bits changed (reserved bits set would fault).
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
fn write(v: u32) {
    debug_assert_eq!(v & !0xffff, 0, "reserved MXCSR bits");
    // SAFETY: ldmxcsr reads the local `v`; it holds an MXCSR value whose reserved bits are clear.
    unsafe {
        std::arch::asm!("ldmxcsr [{}]", in(reg) &raw const v, options(nostack, preserves_flags, readonly));
    }
}

/// The calling thread computes in IEEE mode until [`IeeeMode`] drops; its mode is then restored.
/// Not `Send`: MXCSR belongs to the thread that made the guard.
#[must_use = "the mode is restored when the guard drops"]
pub struct IeeeMode {
    /// The caller's MXCSR, when the guard changed it.
    saved: Option<u32>,
    _thread: PhantomData<*const ()>,
}

impl IeeeMode {
    /// Saves the calling thread's mode and switches it to IEEE mode (a no-op when it is already).
    pub fn enter() -> Self {
        IeeeMode {
            saved: switch_to_ieee(),
            _thread: PhantomData,
        }
    }

    /// Whether entering changed the mode (the caller's thread was not in IEEE mode).
    pub fn changed(&self) -> bool {
        self.saved.is_some()
    }
}

impl Drop for IeeeMode {
    fn drop(&mut self) {
        restore(self.saved);
    }
}

/// Switches the calling thread to IEEE mode; its previous MXCSR when that changed anything.
/// What [`IeeeMode`] does on entry, for a guard that cannot be a Rust value (Python's
/// `_core.ieee_mode`); `restore` undoes it on the same thread.
pub(crate) fn switch_to_ieee() -> Option<u32> {
    #[cfg(target_arch = "x86_64")]
    {
        let old = read();
        if is_ieee(old) {
            return None;
        }
        write(IEEE | (old & FLAGS));
        Some(old)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        None
    }
}

/// Restores a mode `switch_to_ieee` saved on this thread, keeping the status flags raised since.
pub(crate) fn restore(saved: Option<u32>) {
    #[cfg(target_arch = "x86_64")]
    if let Some(old) = saved {
        write(old | (read() & FLAGS));
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = saved;
}

/// `f()` computed in IEEE mode on the calling thread, its mode restored after (also on a panic).
pub fn ieee<R>(f: impl FnOnce() -> R) -> R {
    let _mode = IeeeMode::enter();
    f()
}

/// Puts the calling thread in IEEE mode for good (status flags kept): for the core's own worker
/// threads, at their start and before work, where there is no one else's mode to restore.
pub fn set_thread_ieee() {
    #[cfg(target_arch = "x86_64")]
    {
        let old = read();
        if !is_ieee(old) {
            write(IEEE | (old & FLAGS));
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use std::hint::black_box;

    /// Runs `f` with the thread's MXCSR set to `mode` (flags cleared), restoring it after.
    fn with_mode<R>(mode: u32, f: impl FnOnce() -> R) -> R {
        let before = read();
        write(mode);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        write(before);
        r.unwrap()
    }

    const FAST: u32 = IEEE | FTZ | DAZ | ROUNDING; // flush-to-zero, denormals-are-zero, toward zero

    /// 2^-149 * 2 (subnormal in and out) and 1 + 1.5 * 2^-24 (rounding): what the mode decides.
    /// Inputs and results pass through `black_box`, so they are computed between the mode
    /// switches (register-only arithmetic could be moved across them: see the module docs).
    fn probe() -> (f32, f32) {
        (
            black_box(black_box(f32::from_bits(1)) * black_box(2.0f32)),
            black_box(black_box(1.0f32) + black_box(1.5 * f32::EPSILON / 2.0)),
        )
    }

    #[test]
    fn guard_computes_in_ieee_mode_and_restores_the_callers_mode() {
        let ieee = with_mode(IEEE, probe);
        assert_eq!(ieee, (f32::from_bits(2), 1.0 + f32::EPSILON));
        with_mode(FAST, || {
            assert_eq!(
                probe(),
                (0.0, 1.0),
                "FTZ/DAZ and round toward zero are in force"
            );
            {
                let g = IeeeMode::enter();
                assert!(g.changed());
                assert!(is_ieee(read()));
                assert_eq!(probe(), ieee);
                let inner = IeeeMode::enter(); // nested: already IEEE, nothing to do
                assert!(!inner.changed());
            }
            assert_eq!(read() & !FLAGS, FAST, "the caller's mode is back");
            assert_eq!(probe(), (0.0, 1.0));
            assert_eq!(ieee_probe_through_closure(), ieee);
            assert_eq!(read() & !FLAGS, FAST);
        });
    }

    fn ieee_probe_through_closure() -> (f32, f32) {
        ieee(probe)
    }

    #[test]
    fn guard_keeps_the_flags_its_work_raised() {
        with_mode(FAST, || {
            {
                let _g = IeeeMode::enter();
                let _ = black_box(black_box(1.0f32) / black_box(3.0f32)); // inexact
            }
            assert_eq!(read() & !FLAGS, FAST);
            assert_ne!(
                read() & 0x20,
                0,
                "the precision flag raised under the guard is kept"
            );
        });
    }

    #[test]
    fn guard_restores_after_a_panic() {
        with_mode(FAST, || {
            let r = std::panic::catch_unwind(|| ieee(|| panic!("boom")));
            assert!(r.is_err());
            assert_eq!(read() & !FLAGS, FAST);
        });
    }

    #[test]
    fn worker_threads_inherit_the_mode_and_are_set_to_ieee() {
        let modes = |pool: &rayon::ThreadPool| pool.broadcast(|_| read() & !FLAGS);
        with_mode(FAST, || {
            // the premise: threads started from a thread in FAST mode start in it
            let plain = rayon::ThreadPoolBuilder::new()
                .num_threads(3)
                .build()
                .unwrap();
            assert!(
                modes(&plain).iter().all(|&m| m == FAST),
                "{:x?}",
                modes(&plain)
            );
            plain.broadcast(|_| set_thread_ieee());
            assert!(modes(&plain).iter().all(|&m| m == IEEE));
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(3)
                .start_handler(|_| set_thread_ieee())
                .build()
                .unwrap();
            assert!(modes(&pool).iter().all(|&m| m == IEEE));
            // a program over subnormal inputs on those workers gives IEEE results
            let x: Vec<f32> = (1..5000u32).map(f32::from_bits).collect();
            let y: Vec<f32> = pool.install(|| {
                use rayon::prelude::*;
                x.par_iter()
                    .map(|&v| black_box(v) * black_box(3.0f32))
                    .collect()
            });
            assert!(x
                .iter()
                .zip(&y)
                .all(|(&a, &b)| b.to_bits() == a.to_bits() * 3));
        });
    }
}
