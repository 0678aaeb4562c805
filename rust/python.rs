//! The one binding module: converts Python/numpy values to core types, runs the work with
//! the GIL released, converts results back. Core errors become named Python exceptions.
//!
//! Every array argument is checked here (dtype, dimensions, C order) and refused with a
//! `TypeError` naming it rather than read in the wrong layout; every output is sized with
//! checked arithmetic and allocated fallibly (`MemoryError` naming the size); every long call
//! runs through `run_steps`, the one place the GIL is released, which checks for Ctrl-C
//! between steps.

use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};

use numpy::ndarray::{Dimension, Ix1};
use numpy::{
    Element, IntoPyArray, PyArray, PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray,
    PyReadonlyArray2, PyUntypedArrayMethods,
};
use pyo3::create_exception;
use pyo3::exceptions::{PyMemoryError, PyOverflowError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple, PyType};

use crate::domain::{from_key, key, key_range, DomainError as CoreDomainError};
use crate::error::{
    exhaustive_errors_with, reference_values_into, sample_errors_range, EXHAUSTIVE_BLOCK,
};
use crate::eval::{block_size, isa, Batch, Steps, CHUNK};
use crate::jit::{self, JitBatch};
use crate::program::{Op, Program};
use crate::reference::Target;
use crate::stats::Stats;

create_exception!(
    pysearch._core,
    UnknownTarget,
    PyValueError,
    "No built-in target has this name."
);
create_exception!(
    pysearch._core,
    DomainError,
    PyValueError,
    "A float32 domain or key range was rejected (NaN or reversed bounds, keys out of range)."
);
create_exception!(
    pysearch._core,
    WorkerPoolError,
    PyValueError,
    "The worker threads could not be started. A ValueError, so that callers which report bad \
     input in one line (the CLI) report this too."
);

impl From<CoreDomainError> for PyErr {
    fn from(e: CoreDomainError) -> PyErr {
        DomainError::new_err(e.0)
    }
}

/// A rejected program as `pysearch.ProgramError` (the exception Python-side validation raises),
/// or a plain `ValueError` where that class cannot be imported.
fn program_error(py: Python<'_>, msg: String) -> PyErr {
    let class = py
        .import("pysearch.program")
        .and_then(|m| m.getattr("ProgramError"))
        .and_then(|c| Ok(c.cast_into::<PyType>()?));
    match class {
        Ok(c) => PyErr::from_type(c, msg),
        Err(_) => PyValueError::new_err(msg),
    }
}

// ---------------------------------------------------------------------------------------------
// The GIL-release chokepoint

/// Set in a forked child: rayon's global pool did not survive the fork, so work runs in a fresh pool.
static FORKED: AtomicBool = AtomicBool::new(false);

extern "C" fn mark_forked() {
    FORKED.store(true, Ordering::SeqCst);
}

/// A fresh worker pool in a forked child (where the global one is gone), else `None`.
fn fresh_pool_if_forked() -> PyResult<Option<rayon::ThreadPool>> {
    if !FORKED.load(Ordering::SeqCst) {
        return Ok(None);
    }
    rayon::ThreadPoolBuilder::new()
        .build()
        .map(Some)
        .map_err(|e| WorkerPoolError::new_err(format!("cannot start worker threads: {e}")))
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> &str {
    p.downcast_ref::<&str>()
        .copied()
        .or_else(|| p.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("unknown panic")
}

/// The one place this module releases the GIL: runs `step` over consecutive point ranges
/// covering `0..n` (as `steps` splits them), each on the worker pool with the GIL released, and
/// checks for signals after each, so Ctrl-C ends a long call with `KeyboardInterrupt` within a
/// step. A panic in the core comes back as a `RuntimeError` rather than unwinding into Python.
fn run_steps<F>(py: Python<'_>, n: usize, steps: Steps, mut step: F) -> PyResult<()>
where
    F: FnMut(Range<usize>) + Send,
{
    let pool = fresh_pool_if_forked()?;
    for range in steps.ranges(n) {
        let run = || catch_unwind(AssertUnwindSafe(|| step(range)));
        let done = py.detach(|| match &pool {
            Some(p) => p.install(run),
            None => run(),
        });
        done.map_err(|p| {
            PyRuntimeError::new_err(format!(
                "internal error in pysearch's Rust core: {}; please report it",
                panic_message(&*p)
            ))
        })?;
        py.check_signals()?;
    }
    Ok(())
}

/// `f()` through `run_steps` as one step (for short work such as compiling a batch).
fn detached<R: Send>(py: Python<'_>, f: impl FnOnce() -> R + Send) -> PyResult<R> {
    let mut f = Some(f);
    let mut out = None;
    run_steps(py, 1, Steps { block: 1, step: 1 }, |_| {
        out = f.take().map(|f| f());
    })?;
    out.ok_or_else(|| PyRuntimeError::new_err("internal error: a step did not run"))
}

// ---------------------------------------------------------------------------------------------
// Arguments and outputs

/// What `obj` is, for error messages: dtype and shape of an array, else its type.
fn describe(obj: &Bound<'_, PyAny>) -> String {
    match (obj.getattr("dtype"), obj.getattr("shape")) {
        (Ok(d), Ok(s)) => format!("an array of {d} with shape {s}"),
        _ => obj
            .get_type()
            .name()
            .map_or_else(|_| "an object".into(), |n| format!("{n}")),
    }
}

/// `obj` as a read-only numpy array of `T` with `D`'s number of dimensions, or a `TypeError`
/// naming the argument and saying what it got.
fn array_arg<'py, T: Element, D: Dimension>(
    obj: &Bound<'py, PyAny>,
    what: &str,
) -> PyResult<PyReadonlyArray<'py, T, D>> {
    obj.extract::<PyReadonlyArray<'py, T, D>>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{what} must be a {}-D numpy array of {}, not {}",
            D::NDIM.unwrap_or(0),
            numpy::dtype::<T>(obj.py()),
            describe(obj)
        ))
    })
}

fn not_c_contiguous(what: &str) -> PyErr {
    PyTypeError::new_err(format!(
        "{what} is not C-contiguous (Fortran order, a strided or a reversed view); \
         pass np.ascontiguousarray({what})"
    ))
}

/// The elements of a C-contiguous array in memory order. Anything else (Fortran order, strided
/// or negative-stride views) is refused: numpy's `as_slice` also accepts Fortran order, whose
/// memory order is not the index order the core assumes.
fn c_slice<'a, T: Element, D: Dimension>(
    a: &'a PyReadonlyArray<'_, T, D>,
    what: &str,
) -> PyResult<&'a [T]> {
    if !a.is_c_contiguous() {
        return Err(not_c_contiguous(what));
    }
    a.as_slice().map_err(|_| not_c_contiguous(what))
}

/// Human-readable byte count.
#[allow(clippy::cast_precision_loss)]
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

/// The `MemoryError` for an output of `count` values of `dtype` (`size` bytes each).
fn too_big(what: &str, count: u128, size: usize, dtype: &str) -> PyErr {
    PyMemoryError::new_err(format!(
        "cannot allocate {what}: {count} {dtype} values ({})",
        human_bytes(count * size as u128)
    ))
}

/// Checks that `count` values of `size` bytes can be addressed at all (at most isize::MAX bytes).
fn check_size(what: &str, count: u128, size: usize, dtype: &str) -> PyResult<usize> {
    match count.checked_mul(size as u128) {
        Some(b) if b <= isize::MAX as u128 => Ok(count as usize),
        _ => Err(too_big(what, count, size, dtype)),
    }
}

/// A zeroed numpy array of `shape`, or a `MemoryError` naming the size when it is too big to
/// address or numpy cannot allocate it. numpy takes zeroed pages lazily (calloc), so unlike a
/// Rust `vec![0; n]` this costs no pass over the memory, and unlike it fails without an abort.
fn zeros<'py, T: Element, D: Dimension>(
    py: Python<'py>,
    shape: &[usize],
    what: &str,
) -> PyResult<Bound<'py, PyArray<T, D>>> {
    let dtype = numpy::dtype::<T>(py);
    let size = std::mem::size_of::<T>();
    let count = shape
        .iter()
        .try_fold(1u128, |acc, &d| acc.checked_mul(d as u128))
        .unwrap_or(u128::MAX);
    let err = || too_big(what, count, size, &dtype.to_string());
    check_size(what, count, size, &dtype.to_string())?;
    let arr = py
        .import("numpy")?
        .call_method1("zeros", (PyTuple::new(py, shape)?, &dtype))
        .map_err(|e| {
            if e.is_instance_of::<PyMemoryError>(py) {
                err()
            } else {
                e
            }
        })?;
    Ok(arr.cast_into::<PyArray<T, D>>()?)
}

/// A compiled program as Python passes it: (opcodes, args (n x 3), constants, n_inputs, output).
type RawProgram<'py> = (
    Bound<'py, PyArray1<u8>>,
    Bound<'py, PyArray2<i32>>,
    Bound<'py, PyArray1<f64>>,
    usize,
    i64,
);

#[allow(unsafe_code)]
fn to_programs(py: Python<'_>, raw: Vec<RawProgram<'_>>, float64: bool) -> PyResult<Vec<Program>> {
    raw.into_iter()
        .enumerate()
        .map(|(i, (ops, args, consts, n_inputs, output))| {
            let layout = |what: &str| {
                PyTypeError::new_err(format!("program {i}: {what} must be C-contiguous"))
            };
            if !(ops.is_c_contiguous() && args.is_c_contiguous() && consts.is_c_contiguous()) {
                return Err(layout("opcodes, args and consts"));
            }
            if args.shape()[1] != 3 {
                return Err(program_error(
                    py,
                    format!(
                        "program {i}: args must have shape (n_instructions, 3), got {:?}",
                        args.shape()
                    ),
                ));
            }
            // SAFETY: the GIL is held for the whole conversion and `Program::new` copies the
            // arrays before returning, so no Python code can resize or write them meanwhile
            // (this skips rust-numpy's borrow tracking, a measurable cost per program).
            let (ops, args, consts) = unsafe {
                (
                    ops.as_slice().map_err(|_| layout("opcodes"))?,
                    args.as_slice().map_err(|_| layout("args"))?,
                    consts.as_slice().map_err(|_| layout("consts"))?,
                )
            };
            Program::new(ops, args, consts.to_vec(), n_inputs, output, float64)
                .map_err(|e| program_error(py, format!("program {i}: {e}")))
        })
        .collect()
}

fn check_inputs(progs: &[Program], n_rows: usize) -> PyResult<()> {
    for (i, p) in progs.iter().enumerate() {
        if p.n_inputs != n_rows {
            return Err(PyValueError::new_err(format!(
                "program {i} takes {} input(s) but x has {n_rows} row(s)",
                p.n_inputs
            )));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Evaluation

fn eval_typed<'py, T: crate::float::Float + Element>(
    py: Python<'py>,
    progs: &[Program],
    x: &PyReadonlyArray2<'py, T>,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyArray2<T>>> {
    let shape = x.shape();
    let (rows, n) = (shape[0], shape[1]);
    check_inputs(progs, rows)?;
    let flat = c_slice(x, "x")?;
    let inputs: Vec<&[T]> = (0..rows).map(|k| &flat[k * n..(k + 1) * n]).collect();
    let arr: Bound<'py, PyArray2<T>> = match out {
        Some(o) => {
            let a = o.cast::<PyArray2<T>>().map_err(|_| {
                PyTypeError::new_err(format!(
                    "out must be a 2-D numpy array of {} (the programs' dtype), not {}",
                    numpy::dtype::<T>(py),
                    describe(o)
                ))
            })?;
            if a.shape() != [progs.len(), n] {
                return Err(PyValueError::new_err(format!(
                    "out has shape {:?}, expected ({}, {n})",
                    a.shape(),
                    progs.len()
                )));
            }
            if !a.is_c_contiguous() {
                return Err(not_c_contiguous("out"));
            }
            a.clone()
        }
        None => zeros(py, &[progs.len(), n], "the evaluation's output")?,
    };
    let mut w = arr.try_readwrite().map_err(|e| {
        PyValueError::new_err(format!(
            "out must be a writable array that shares no memory with x ({e})"
        ))
    })?;
    let o = w.as_slice_mut().map_err(|_| not_c_contiguous("out"))?;
    let batch = detached(py, || Batch::new(progs, &inputs))?;
    let steps = Steps::plan(
        n,
        progs.len(),
        batch.work_per_point(),
        block_size(n, progs.len()),
    );
    run_steps(py, n, steps, |cols| batch.run_columns(o, cols, steps.block))?;
    drop(w);
    Ok(arr)
}

/// Evaluate programs on inputs `x` of shape (n_inputs, n); returns (n_programs, n), written
/// into `out` when given (no allocation: the steady state of a search loop).
#[pyfunction]
#[pyo3(signature = (programs, x, out=None))]
fn evaluate<'py>(
    py: Python<'py>,
    programs: Vec<RawProgram<'py>>,
    x: &Bound<'py, PyAny>,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    if let Ok(x32) = x.extract::<PyReadonlyArray2<'py, f32>>() {
        let progs = to_programs(py, programs, false)?;
        Ok(eval_typed(py, &progs, &x32, out)?.into_any())
    } else if let Ok(x64) = x.extract::<PyReadonlyArray2<'py, f64>>() {
        let progs = to_programs(py, programs, true)?;
        Ok(eval_typed(py, &progs, &x64, out)?.into_any())
    } else {
        Err(PyTypeError::new_err(format!(
            "x must be a 2-D float32 or float64 numpy array, not {}",
            describe(x)
        )))
    }
}

// ---------------------------------------------------------------------------------------------
// ULP errors

/// Work per point of the error statistics and of a reference value, in instruction units
/// (only the size of a step depends on these).
const ERROR_WORK: usize = 8;
const REFERENCE_WORK: usize = 64;

fn stats_dict<'py>(py: Python<'py>, stats: &[Stats]) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let col_f =
        |f: &dyn Fn(&Stats) -> f64| stats.iter().map(f).collect::<Vec<f64>>().into_pyarray(py);
    let col_u =
        |f: &dyn Fn(&Stats) -> u64| stats.iter().map(f).collect::<Vec<u64>>().into_pyarray(py);
    d.set_item("max_ulp", col_f(&|s| s.max_ulp))?;
    d.set_item("sum_ulp", col_f(&|s| s.sum_ulp))?;
    d.set_item("argmax", col_u(&|s| s.argmax))?;
    d.set_item("n", col_u(&|s| s.n))?;
    d.set_item("n_correct", col_u(&|s| s.n_correct))?;
    d.set_item("n_nonfinite", col_u(&|s| s.n_nonfinite))?;
    d.set_item("n_infinite", col_u(&|s| s.n_infinite))?;
    d.set_item("max_distance", col_u(&|s| s.max_distance))?;
    d.set_item("n_undecided", col_u(&|s| s.n_undecided))?;
    Ok(d)
}

/// ULP-error statistics of float32 programs over sample points with known references.
#[pyfunction]
fn sample_ulp_errors<'py>(
    py: Python<'py>,
    programs: Vec<RawProgram<'py>>,
    x: &Bound<'py, PyAny>,
    reference: &Bound<'py, PyAny>,
    rounded: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyDict>> {
    let progs = to_programs(py, programs, false)?;
    check_inputs(&progs, 1)?;
    let (x, r, c) = (
        array_arg::<f32, Ix1>(x, "x")?,
        array_arg::<f64, Ix1>(reference, "reference")?,
        array_arg::<f32, Ix1>(rounded, "rounded")?,
    );
    let (x, r, c) = (
        c_slice(&x, "x")?,
        c_slice(&r, "reference")?,
        c_slice(&c, "rounded")?,
    );
    if r.len() != x.len() || c.len() != x.len() {
        return Err(PyValueError::new_err(format!(
            "x, reference and rounded differ in length ({}, {}, {})",
            x.len(),
            r.len(),
            c.len()
        )));
    }
    if x.is_empty() {
        return Err(PyValueError::new_err("no points to measure the error on"));
    }
    let n = x.len();
    let jit = detached(py, || JitBatch::compile(&progs))?;
    let work: usize = progs.iter().map(|p| p.live.len() + ERROR_WORK).sum();
    let steps = Steps::plan(n, progs.len(), work, block_size(n, progs.len()));
    let mut total = vec![Stats::default(); progs.len()];
    run_steps(py, n, steps, |cols| {
        let part = sample_errors_range(&progs, &jit, (x, r, c), cols, steps.block);
        for (t, p) in total.iter_mut().zip(part) {
            *t = t.merge(p);
        }
    })?;
    stats_dict(py, &total)
}

fn target(name: &str) -> PyResult<Target> {
    Target::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = Target::ALL.iter().map(|(n, _)| *n).collect();
        UnknownTarget::new_err(format!(
            "unknown target {name:?}; built-in targets: {}",
            names.join(", ")
        ))
    })
}

/// Reference values, their float32 rounding and undecided flags, as numpy arrays.
type References<'py> = (
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f32>>,
    Bound<'py, PyArray1<bool>>,
);

/// float64 reference values of a built-in target, their float32 rounding, and undecided flags.
#[pyfunction]
fn reference<'py>(py: Python<'py>, name: &str, x: &Bound<'py, PyAny>) -> PyResult<References<'py>> {
    let t = target(name)?;
    let x = array_arg::<f32, Ix1>(x, "x")?;
    let x = c_slice(&x, "x")?;
    let n = x.len();
    let what = "the reference values";
    let r = zeros::<f64, Ix1>(py, &[n], what)?;
    let c = zeros::<f32, Ix1>(py, &[n], what)?;
    let u = zeros::<bool, Ix1>(py, &[n], what)?;
    {
        let (mut rw, mut cw, mut uw) = (r.try_readwrite()?, c.try_readwrite()?, u.try_readwrite()?);
        let (rs, cs, us) = (rw.as_slice_mut()?, cw.as_slice_mut()?, uw.as_slice_mut()?);
        let steps = Steps::plan(n, 1, REFERENCE_WORK, CHUNK);
        run_steps(py, n, steps, |k| {
            reference_values_into(
                t,
                &x[k.clone()],
                (&mut rs[k.clone()], &mut cs[k.clone()], &mut us[k]),
            );
        })?;
    }
    Ok((r, c, u))
}

/// Error of one float32 program over every float32 in [a, b] against a built-in target.
/// Returns the statistics (argmax as the input value) and the undecided inputs.
#[pyfunction]
fn exhaustive_ulp_error<'py>(
    py: Python<'py>,
    program: RawProgram<'py>,
    name: &str,
    a: f32,
    b: f32,
) -> PyResult<(Bound<'py, PyDict>, f32, Bound<'py, PyArray1<f32>>)> {
    let t = target(name)?;
    let p = to_programs(py, vec![program], false)?.remove(0);
    check_inputs(std::slice::from_ref(&p), 1)?;
    let (lo, hi) = key_range(a, b)?;
    // at most 2^32 keys: fits usize and i64 on the 64-bit targets this crate builds for
    let count = usize::try_from(hi - lo + 1)
        .map_err(|_| DomainError::new_err(format!("cannot scan {} values here", hi - lo + 1)))?;
    let jit = detached(py, || JitBatch::compile(std::slice::from_ref(&p)))?;
    let kernel = jit.get(0);
    let steps = Steps::plan(count, 1, p.live.len() + REFERENCE_WORK, EXHAUSTIVE_BLOCK);
    let mut total = Stats::default();
    let mut undecided = Vec::new();
    run_steps(py, count, steps, |k| {
        let (first, last) = (lo + k.start as i64, lo + k.end as i64 - 1);
        let mut part = exhaustive_errors_with(&p, kernel, t, (first, last), steps.block);
        part.stats.argmax = part.stats.argmax.saturating_add(k.start as u64);
        total = total.merge(part.stats);
        undecided.extend(part.undecided);
    })?;
    let argmax_x = from_key(lo.saturating_add(i64::try_from(total.argmax).unwrap_or(0)));
    Ok((
        stats_dict(py, &[total])?,
        argmax_x,
        undecided.into_pyarray(py),
    ))
}

// ---------------------------------------------------------------------------------------------
// Domains

/// Number of float32 values in [a, b] and the first one's key.
#[pyfunction]
fn float32_key_range(a: f32, b: f32) -> PyResult<(i64, i64)> {
    Ok(key_range(a, b)?)
}

/// An integer argument that must lie in `[lo, hi]`: a `TypeError` for a non-integer, a
/// `DomainError` naming the range for any integer outside it (however large).
fn int_in(obj: &Bound<'_, PyAny>, what: &str, lo: i64, hi: i64, range: &str) -> PyResult<i64> {
    let out_of_range = || {
        DomainError::new_err(format!(
            "{what} {} is outside {range} [{lo}, {hi}]",
            obj.str().map_or_else(|_| "?".into(), |s| s.to_string())
        ))
    };
    match obj.extract::<i64>() {
        Ok(v) if (lo..=hi).contains(&v) => Ok(v),
        Ok(_) => Err(out_of_range()),
        Err(e) if e.is_instance_of::<PyOverflowError>(obj.py()) => Err(out_of_range()),
        Err(_) => Err(PyTypeError::new_err(format!(
            "{what} must be an integer, not {}",
            describe(obj)
        ))),
    }
}

/// The float32 values with keys start, start+1, ..., start+count-1 (keys of -inf..inf only).
#[pyfunction]
fn float32_from_keys<'py>(
    py: Python<'py>,
    start: &Bound<'py, PyAny>,
    count: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyArray1<f32>>> {
    let (kmin, kmax) = (key(f32::NEG_INFINITY), key(f32::INFINITY));
    let keys = "the float32 keys (-inf to inf)";
    let start = int_in(start, "start key", kmin, kmax, keys)?;
    let count = int_in(
        count,
        "count",
        0,
        kmax - kmin + 1,
        "the number of float32 keys",
    )?;
    if start + count - 1 > kmax {
        return Err(DomainError::new_err(format!(
            "keys {start}..{} are outside {keys} [{kmin}, {kmax}]",
            start + count - 1
        )));
    }
    // both are in range now, so the count is at most 2^32 - 2^24 + 1
    let n = usize::try_from(count).unwrap_or(0);
    let v = zeros::<f32, Ix1>(py, &[n], "the float32 values")?;
    {
        let mut w = v.try_readwrite()?;
        let vs = w.as_slice_mut()?;
        run_steps(py, n, Steps::plan(n, 1, 1, CHUNK), |k| {
            for (i, o) in (k.start..).zip(&mut vs[k]) {
                *o = from_key(start + i as i64);
            }
        })?;
    }
    Ok(v)
}

// ---------------------------------------------------------------------------------------------
// Introspection

/// Which float32 programs run as JIT-compiled machine code here (the rest are interpreted).
#[pyfunction]
fn jit_compiled(py: Python<'_>, programs: Vec<RawProgram<'_>>) -> PyResult<Vec<bool>> {
    let progs = to_programs(py, programs, false)?;
    detached(py, || {
        let batch = JitBatch::compile(&progs);
        (0..progs.len()).map(|i| batch.get(i).is_some()).collect()
    })
}

/// Instruction set the evaluator's hot loop uses on this CPU.
#[pyfunction(name = "isa")]
fn isa_name() -> &'static str {
    match isa() {
        crate::eval::Isa::Avx512 => "avx512",
        crate::eval::Isa::Avx2Fma => "avx2+fma",
        crate::eval::Isa::Baseline => "baseline",
    }
}

/// The core's op table, in opcode order: (name, arity, float32 supported, float64 supported,
/// compiled by the JIT on CPUs where it runs).
#[pyfunction]
fn op_table() -> Vec<(&'static str, usize, bool, bool, bool)> {
    Op::ALL
        .iter()
        .map(|&op| (op.name(), op.arity(), !op.float64_only(), true, jit::compiles_op(op)))
        .collect()
}

/// Names of the built-in targets.
#[pyfunction]
fn target_names() -> Vec<&'static str> {
    Target::ALL.iter().map(|(n, _)| *n).collect()
}

#[pymodule]
#[pyo3(name = "_core")]
fn core_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    #[cfg(unix)]
    #[allow(unsafe_code)]
    // SAFETY: registers a plain function that only stores to an atomic.
    unsafe {
        libc::pthread_atfork(None, None, Some(mark_forked));
    }
    m.add("UnknownTarget", m.py().get_type::<UnknownTarget>())?;
    m.add("DomainError", m.py().get_type::<DomainError>())?;
    m.add("WorkerPoolError", m.py().get_type::<WorkerPoolError>())?;
    m.add_function(wrap_pyfunction!(evaluate, m)?)?;
    m.add_function(wrap_pyfunction!(sample_ulp_errors, m)?)?;
    m.add_function(wrap_pyfunction!(reference, m)?)?;
    m.add_function(wrap_pyfunction!(exhaustive_ulp_error, m)?)?;
    m.add_function(wrap_pyfunction!(float32_key_range, m)?)?;
    m.add_function(wrap_pyfunction!(float32_from_keys, m)?)?;
    m.add_function(wrap_pyfunction!(isa_name, m)?)?;
    m.add_function(wrap_pyfunction!(jit_compiled, m)?)?;
    m.add_function(wrap_pyfunction!(target_names, m)?)?;
    m.add_function(wrap_pyfunction!(op_table, m)?)?;
    Ok(())
}
