//! The one binding module: converts Python/numpy values to core types, runs the work with
//! the GIL released, converts results back. Core errors (`CoreError`) become named Python
//! exceptions in one place, `From<CoreError> for PyErr`.
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
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple, PyType};

use crate::constfit;
use crate::domain::{from_keys_into, key_range, keys_span, KEY_MAX, KEY_MIN};
use crate::error::{reference_values_into, ExhaustiveScan, SampleScan, REFERENCE_WORK};
use crate::errors::{alloc_len, too_big, CoreError};
use crate::eval::{block_size, isa, Batch, Steps, CHUNK};
use crate::fit::{self, FitShape};
use crate::fpenv;
use crate::jit::{self, JitBatch};
use crate::lawfit;
use crate::program::{check_inputs, Op, Program};
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

/// The one conversion of core errors into Python exceptions (every variant named in
/// `pysearch.__init__`'s docstring and in docs/architecture.md).
impl From<CoreError> for PyErr {
    fn from(e: CoreError) -> PyErr {
        match e {
            CoreError::InvalidProgram(m) => Python::attach(|py| program_error(py, m)),
            CoreError::Domain(m) => DomainError::new_err(m),
            CoreError::UnknownTarget(m) => UnknownTarget::new_err(m),
            CoreError::Mismatch(m) => PyValueError::new_err(m),
            CoreError::Alloc(m) => PyMemoryError::new_err(m),
            CoreError::WorkerPool(m) => WorkerPoolError::new_err(m),
            CoreError::Internal(m) => PyRuntimeError::new_err(m),
        }
    }
}

/// A rejected program as `pysearch.ProgramError` (the exception Python-side validation raises,
/// defined in pysearch/program.py), or a plain `ValueError` where that class cannot be imported.
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

/// Set once every thread of the global pool is in IEEE mode (`fpenv`).
static GLOBAL_POOL_IEEE: AtomicBool = AtomicBool::new(false);

/// A fresh worker pool in a forked child (where the global one is gone), else `None`. Either
/// way the workers compute in IEEE mode (`fpenv::set_thread_ieee`): threads inherit the mode of
/// the thread that starts them, which may be FTZ/DAZ or another rounding (a `-ffast-math`
/// library loaded before). They are the core's own threads, so the mode is set once and kept:
/// the global pool's on first use (a broadcast, which starts the pool), a fresh pool's at start.
fn fresh_pool_if_forked() -> Result<Option<rayon::ThreadPool>, CoreError> {
    if !FORKED.load(Ordering::SeqCst) {
        if !GLOBAL_POOL_IEEE.load(Ordering::Acquire) {
            catch_unwind(|| rayon::broadcast(|_| fpenv::set_thread_ieee())).map_err(|p| {
                CoreError::WorkerPool(format!(
                    "cannot start worker threads: {}",
                    panic_message(&*p)
                ))
            })?;
            GLOBAL_POOL_IEEE.store(true, Ordering::Release);
        }
        return Ok(None);
    }
    rayon::ThreadPoolBuilder::new()
        .start_handler(|_| fpenv::set_thread_ieee())
        .build()
        .map(Some)
        .map_err(|e| CoreError::WorkerPool(format!("cannot start worker threads: {e}")))
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
/// Every step computes in IEEE mode whatever the caller's thread is set to (`fpenv::IeeeMode`
/// on the thread that runs it, restored after; the pool's workers are in IEEE mode).
fn run_steps<F>(py: Python<'_>, n: usize, steps: Steps, mut step: F) -> PyResult<()>
where
    F: FnMut(Range<usize>) + Send,
{
    let pool = fresh_pool_if_forked()?;
    for range in steps.ranges(n) {
        let run = || catch_unwind(AssertUnwindSafe(|| fpenv::ieee(|| step(range))));
        let done = py.detach(|| match &pool {
            Some(p) => p.install(run),
            None => run(),
        });
        done.map_err(|p| {
            CoreError::Internal(format!(
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
    Ok(out.ok_or_else(|| CoreError::Internal("internal error: a step did not run".into()))?)
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
    // the dtype's name is formatted only for the error message (numpy's `__str__` is slow)
    let err = || PyErr::from(too_big(what, count, size, &dtype.to_string()));
    if alloc_len(what, count, size, "").is_err() {
        return Err(err());
    }
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

/// A compiled program as Python passes it: (opcodes, args (n x 3), constants, `n_inputs`, output).
type RawProgram<'py> = (
    Bound<'py, PyArray1<u8>>,
    Bound<'py, PyArray2<i32>>,
    Bound<'py, PyArray1<f64>>,
    usize,
    i64,
);

#[allow(unsafe_code)]
fn to_programs(raw: Vec<RawProgram<'_>>, float64: bool) -> PyResult<Vec<Program>> {
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
                return Err(CoreError::InvalidProgram(format!(
                    "program {i}: args must have shape (n_instructions, 3), got {:?}",
                    args.shape()
                ))
                .into());
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
            Ok(
                Program::new(ops, args, consts.to_vec(), n_inputs, output, float64)
                    .map_err(|e| e.context(&format!("program {i}")))?,
            )
        })
        .collect()
}

/// A `pysearch.program.Program` read attribute by attribute into the flat slot form of
/// `Program.compile()` (inputs, then constants in operand order, then values), with no numpy
/// arrays in between. `opcode` maps op names to opcodes (`pysearch.program.OPCODE`).
fn program_from_object(
    obj: &Bound<'_, PyAny>,
    opcode: &Bound<'_, PyDict>,
    float64: bool,
    i: usize,
) -> PyResult<Program> {
    let py = obj.py();
    let bad = |what: String| program_error(py, format!("program {i}: {what}"));
    let n_inputs = obj.getattr(intern!(py, "inputs"))?.len()?;
    let output: i64 = obj.getattr(intern!(py, "output"))?.extract()?;
    let instrs = obj.getattr(intern!(py, "instrs"))?;
    let n = instrs.len()?;
    let mut ops = Vec::with_capacity(n);
    let mut args: Vec<i64> = Vec::with_capacity(3 * n);
    let mut consts = Vec::new();
    let mut value_slots = Vec::new(); // entries of `args` that hold a value index (base added below)
    for ins in instrs.try_iter()? {
        let ins = ins?;
        let op = ins.getattr(intern!(py, "op"))?;
        let code = opcode
            .get_item(&op)?
            .ok_or_else(|| bad(format!("unknown op {op}")))?;
        ops.push(code.extract::<u8>()?);
        let mut n_args = 0;
        for r in ins.getattr(intern!(py, "args"))?.try_iter()? {
            let r = r?;
            if n_args == 3 {
                return Err(bad("an instruction has more than 3 operands".into()));
            }
            n_args += 1;
            let kind = r.getattr(intern!(py, "kind"))?;
            match kind.cast::<PyString>()?.to_str()? {
                "input" => {
                    let k: i64 = r.getattr(intern!(py, "index"))?.extract()?;
                    if !(0..n_inputs as i64).contains(&k) {
                        return Err(bad(format!("input index {k} out of range")));
                    }
                    args.push(k);
                }
                "value" => {
                    let k: i64 = r.getattr(intern!(py, "index"))?.extract()?;
                    if k < 0 {
                        return Err(bad(format!("value index {k} out of range")));
                    }
                    value_slots.push(args.len());
                    args.push(k);
                }
                "const" => {
                    args.push((n_inputs + consts.len()) as i64);
                    consts.push(r.getattr(intern!(py, "value"))?.extract::<f64>()?);
                }
                k => return Err(bad(format!("unknown operand kind {k:?}"))),
            }
        }
        args.extend(std::iter::repeat_n(0, 3 - n_args));
    }
    let base = (n_inputs + consts.len()) as i64;
    for j in value_slots {
        args[j] += base;
    }
    let args: Vec<i32> = args
        .into_iter()
        .map(|a| i32::try_from(a).map_err(|_| bad(format!("operand slot {a} out of range"))))
        .collect::<PyResult<_>>()?;
    Program::new(&ops, &args, consts, n_inputs, base + output, float64)
        .map_err(|e| bad(e.to_string()))
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

/// Evaluate programs on inputs `x` of shape `(n_inputs, n)`; returns `(n_programs, n)`, written
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
        let progs = to_programs(programs, false)?;
        Ok(eval_typed(py, &progs, &x32, out)?.into_any())
    } else if let Ok(x64) = x.extract::<PyReadonlyArray2<'py, f64>>() {
        let progs = to_programs(programs, true)?;
        Ok(eval_typed(py, &progs, &x64, out)?.into_any())
    } else {
        Err(PyTypeError::new_err(format!(
            "x must be a 2-D float32 or float64 numpy array, not {}",
            describe(x)
        )))
    }
}

/// `evaluate` for `pysearch.program.Program` objects, read directly (see `program_from_object`):
/// the user path's per-call conversion without a numpy array per program.
#[pyfunction]
#[pyo3(signature = (programs, opcode, x, out=None))]
fn evaluate_programs<'py>(
    py: Python<'py>,
    programs: &Bound<'py, PyList>,
    opcode: &Bound<'py, PyDict>,
    x: &Bound<'py, PyAny>,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let convert = |float64: bool| -> PyResult<Vec<Program>> {
        programs
            .iter()
            .enumerate()
            .map(|(i, p)| program_from_object(&p, opcode, float64, i))
            .collect()
    };
    if let Ok(x32) = x.extract::<PyReadonlyArray2<'py, f32>>() {
        Ok(eval_typed(py, &convert(false)?, &x32, out)?.into_any())
    } else if let Ok(x64) = x.extract::<PyReadonlyArray2<'py, f64>>() {
        Ok(eval_typed(py, &convert(true)?, &x64, out)?.into_any())
    } else {
        Err(PyTypeError::new_err(
            "x must be a 2-D float32 or float64 numpy array",
        ))
    }
}

/// Outputs of one program structure (float64 `fit` semantics, unrounded: see `fit.rs`) for
/// every row of constants `consts` `(K, m)` at the points `x` `(inputs, n)`: `(K, n)`; with
/// `jacobian`, also the derivatives with respect to the constants, `(K, n, m)`, as a tuple.
/// The program's own constant values are ignored (only their count matters).
#[pyfunction]
#[pyo3(signature = (program, consts, x, jacobian=false))]
fn fit_eval<'py>(
    py: Python<'py>,
    program: RawProgram<'py>,
    consts: &Bound<'py, PyAny>,
    x: &Bound<'py, PyAny>,
    jacobian: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let prog = to_programs(vec![program], true)?.remove(0);
    let c = array_arg::<f64, numpy::ndarray::Ix2>(consts, "consts")?;
    let xa = array_arg::<f64, numpy::ndarray::Ix2>(x, "x")?;
    let (k, m) = (c.shape()[0], c.shape()[1]);
    let (rows, n) = (xa.shape()[0], xa.shape()[1]);
    let shape = FitShape { k, m, n };
    fit::check(&prog, shape, rows, jacobian)?;
    let cs = c_slice(&c, "consts")?;
    let xs = c_slice(&xa, "x")?;
    let out: Bound<'py, PyArray2<f64>> = zeros(py, &[k, n], "the fit evaluation's output")?;
    let mut ow = out.try_readwrite()?;
    let o = ow.as_slice_mut().map_err(|_| not_c_contiguous("out"))?;
    if jacobian {
        let jac: Bound<'py, PyArray<f64, numpy::ndarray::Ix3>> =
            zeros(py, &[k, n, m], "the fit evaluation's Jacobian")?;
        let mut jw = jac.try_readwrite()?;
        let j = jw.as_slice_mut().map_err(|_| not_c_contiguous("jac"))?;
        run_steps(py, 1, Steps { block: 1, step: 1 }, |_| {
            fit::fit_eval(&prog, cs, xs, shape, o, Some(j));
        })?;
        drop((ow, jw));
        Ok(PyTuple::new(py, [out.into_any(), jac.into_any()])?.into_any())
    } else {
        run_steps(py, 1, Steps { block: 1, step: 1 }, |_| {
            fit::fit_eval(&prog, cs, xs, shape, o, None);
        })?;
        drop(ow);
        Ok(out.into_any())
    }
}

/// Fits the constants of float64 law programs (`lawfit.rs`: Levenberg-Marquardt with exact
/// Jacobians, least squares or Huber by reweighting, in the residual `space`) on the inputs `x`
/// `(inputs, n)` and targets `t` (in that space), all programs in one call with the GIL
/// released, each from its own constants; `weights` (one per target, optional) multiply each
/// residual (linear space, targets `f`, weights `1/f`: relative error). Returns (constants list,
/// costs array); a cost is infinite where the fit cannot start (no constants, a non-finite one,
/// an op without a derivative).
#[pyfunction]
#[pyo3(signature = (programs, x, t, space, loss="lsq", delta=1e-3, max_iter=40, weights=None))]
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
fn fit_laws<'py>(
    py: Python<'py>,
    programs: Vec<RawProgram<'py>>,
    x: &Bound<'py, PyAny>,
    t: &Bound<'py, PyAny>,
    space: &str,
    loss: &str,
    delta: f64,
    max_iter: usize,
    weights: Option<&Bound<'py, PyAny>>,
) -> PyResult<(Bound<'py, PyList>, Bound<'py, PyArray1<f64>>)> {
    let space = lawfit::Space::from_name(space).ok_or_else(|| {
        PyValueError::new_err(format!(
            "unknown residual space {space:?}; expected 'linear', 'log' or 'loglog'"
        ))
    })?;
    if !(delta > 0.0 && delta.is_finite()) {
        return Err(PyValueError::new_err(format!(
            "delta must be a positive number, not {delta}"
        )));
    }
    let loss = match loss {
        "lsq" => lawfit::Loss::Lsq,
        "huber" => lawfit::Loss::Huber(delta),
        _ => {
            return Err(PyValueError::new_err(format!(
                "unknown loss {loss:?}; expected 'lsq' or 'huber'"
            )))
        }
    };
    let progs = to_programs(programs, true)?;
    let xa = array_arg::<f64, numpy::ndarray::Ix2>(x, "x")?;
    let ta = array_arg::<f64, Ix1>(t, "t")?;
    let (rows, n) = (xa.shape()[0], xa.shape()[1]);
    if n == 0 || ta.len() != n {
        return Err(CoreError::Mismatch(format!(
            "x must have one column per target and t at least one target, got {n} column(s) and {} target(s)",
            ta.len()
        ))
        .into());
    }
    check_inputs(&progs, rows)?;
    let wa = weights
        .map(|w| array_arg::<f64, Ix1>(w, "weights"))
        .transpose()?;
    if let Some(w) = &wa {
        if w.len() != n {
            return Err(CoreError::Mismatch(format!(
                "weights must have one entry per target, got {} weight(s) and {n} target(s)",
                w.len()
            ))
            .into());
        }
    }
    let data = lawfit::LawData {
        x: c_slice(&xa, "x")?,
        t: c_slice(&ta, "t")?,
        space,
        loss,
        max_iter,
        weights: wa.as_ref().map(|w| c_slice(w, "weights")).transpose()?,
    };
    let mut out: Vec<lawfit::LawFit> = Vec::with_capacity(progs.len());
    let step = lawfit::PROGRAMS_PER_STEP;
    run_steps(py, progs.len(), Steps { block: 1, step }, |r| {
        out.extend(lawfit::fit_laws(&progs[r], &data));
    })?;
    let consts = PyList::empty(py);
    for o in &out {
        consts.append(o.consts.clone().into_pyarray(py))?;
    }
    let cost = out.iter().map(|o| o.cost).collect::<Vec<f64>>();
    Ok((consts, cost.into_pyarray(py)))
}

/// Refuses columns that are empty or differ in length (`ValueError` naming them).
fn same_len(what: &str, cols: &[&[f64]]) -> PyResult<()> {
    let n = cols[0].len();
    if n == 0 || cols.iter().any(|c| c.len() != n) {
        return Err(CoreError::Mismatch(format!(
            "{what} must be arrays of one nonzero length, got lengths {:?}",
            cols.iter().map(|c| c.len()).collect::<Vec<_>>()
        ))
        .into());
    }
    Ok(())
}

/// Fits the constants of float32 one-input programs (`constfit.rs`: real-valued fit on
/// `x_fit`, `f_fit`, `scale_fit`, then float32 tuning on the sample `x`, `reference`, `rounded`),
/// all programs in one call with the GIL released. Returns a dict: `consts` (a list of float64
/// arrays), `fitted`, `affine`, `fit_error`, `max_ulp` (one entry per program).
#[pyfunction]
#[pyo3(signature = (programs, x_fit, f_fit, scale_fit, x, reference, rounded, max_evals=120, tune_below=4.0, tune_rounds=8))]
#[allow(clippy::too_many_arguments)]
fn fit_constants<'py>(
    py: Python<'py>,
    programs: Vec<RawProgram<'py>>,
    x_fit: &Bound<'py, PyAny>,
    f_fit: &Bound<'py, PyAny>,
    scale_fit: &Bound<'py, PyAny>,
    x: &Bound<'py, PyAny>,
    reference: &Bound<'py, PyAny>,
    rounded: &Bound<'py, PyAny>,
    max_evals: usize,
    tune_below: f64,
    tune_rounds: usize,
) -> PyResult<Bound<'py, PyDict>> {
    let progs = to_programs(programs, false)?;
    check_inputs(&progs, 1)?;
    let (xf, ff, sf) = (
        array_arg::<f64, Ix1>(x_fit, "x_fit")?,
        array_arg::<f64, Ix1>(f_fit, "f_fit")?,
        array_arg::<f64, Ix1>(scale_fit, "scale_fit")?,
    );
    let (xs, rs, cs) = (
        array_arg::<f32, Ix1>(x, "x")?,
        array_arg::<f64, Ix1>(reference, "reference")?,
        array_arg::<f32, Ix1>(rounded, "rounded")?,
    );
    let data = fit_data(
        (
            c_slice(&xf, "x_fit")?,
            c_slice(&ff, "f_fit")?,
            c_slice(&sf, "scale_fit")?,
        ),
        (
            c_slice(&xs, "x")?,
            c_slice(&rs, "reference")?,
            c_slice(&cs, "rounded")?,
        ),
    )?;
    let opts = constfit::FitOptions {
        max_evals,
        tune_below,
        tune_rounds,
    };
    let mut out: Vec<constfit::FitOutcome> = Vec::with_capacity(progs.len());
    let step = constfit::PROGRAMS_PER_STEP;
    run_steps(py, progs.len(), Steps { block: 1, step }, |r| {
        out.extend(constfit::fit_programs(&progs[r], &data, opts));
    })?;
    let d = PyDict::new(py);
    let consts = PyList::empty(py);
    for o in &out {
        consts.append(o.consts.clone().into_pyarray(py))?;
    }
    d.set_item("consts", consts)?;
    d.set_item(
        "fitted",
        out.iter()
            .map(|o| o.fitted)
            .collect::<Vec<bool>>()
            .into_pyarray(py),
    )?;
    d.set_item(
        "affine",
        out.iter()
            .map(|o| o.affine)
            .collect::<Vec<bool>>()
            .into_pyarray(py),
    )?;
    d.set_item(
        "fit_error",
        out.iter()
            .map(|o| o.fit_error)
            .collect::<Vec<f64>>()
            .into_pyarray(py),
    )?;
    d.set_item(
        "max_ulp",
        out.iter()
            .map(|o| o.max_ulp)
            .collect::<Vec<f64>>()
            .into_pyarray(py),
    )?;
    Ok(d)
}

/// The fit points and the search sample, checked for matching nonzero lengths.
fn fit_data<'a>(
    (x_fit, f_fit, scale_fit): (&'a [f64], &'a [f64], &'a [f64]),
    (x, reference, rounded): (&'a [f32], &'a [f64], &'a [f32]),
) -> PyResult<constfit::FitData<'a>> {
    same_len("x_fit, f_fit and scale_fit", &[x_fit, f_fit, scale_fit])?;
    if x.is_empty() || x.len() != reference.len() || x.len() != rounded.len() {
        return Err(CoreError::Mismatch(format!(
            "x, reference and rounded must be arrays of one nonzero length, got lengths [{}, {}, {}]",
            x.len(),
            reference.len(),
            rounded.len()
        ))
        .into());
    }
    Ok(constfit::FitData {
        x_fit,
        f_fit,
        scale_fit,
        x,
        reference,
        rounded,
    })
}

/// float32 tuning only (`constfit::tune`) of one-input float32 programs on the sample `x`,
/// `reference`, `rounded`, in one call: each program's constants (rounded to float32) move by
/// neighbouring float32 steps while (max ULP, mean ULP) falls; `free` limits the moves to the
/// constants at these positions. Returns (constants list, max ULP array, mean ULP array).
#[pyfunction]
#[pyo3(signature = (programs, x, reference, rounded, rounds=8, free=None))]
// pyo3 hands arguments over as owned values (`free`)
#[allow(clippy::type_complexity, clippy::needless_pass_by_value)]
fn tune_constants<'py>(
    py: Python<'py>,
    programs: Vec<RawProgram<'py>>,
    x: &Bound<'py, PyAny>,
    reference: &Bound<'py, PyAny>,
    rounded: &Bound<'py, PyAny>,
    rounds: usize,
    free: Option<Vec<usize>>,
) -> PyResult<(
    Bound<'py, PyList>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f64>>,
)> {
    let progs = to_programs(programs, false)?;
    check_inputs(&progs, 1)?;
    let (xs, rs, cs) = (
        array_arg::<f32, Ix1>(x, "x")?,
        array_arg::<f64, Ix1>(reference, "reference")?,
        array_arg::<f32, Ix1>(rounded, "rounded")?,
    );
    let one = [1.0f64];
    let data = fit_data(
        (&one, &one, &one),
        (
            c_slice(&xs, "x")?,
            c_slice(&rs, "reference")?,
            c_slice(&cs, "rounded")?,
        ),
    )?;
    let mut out: Vec<(Vec<f64>, f64, f64)> = Vec::with_capacity(progs.len());
    let step = constfit::PROGRAMS_PER_STEP;
    run_steps(py, progs.len(), Steps { block: 1, step }, |r| {
        out.extend(constfit::tune_programs(
            &progs[r],
            &data,
            rounds,
            free.as_deref(),
        ));
    })?;
    let consts = PyList::empty(py);
    for o in &out {
        consts.append(o.0.clone().into_pyarray(py))?;
    }
    Ok((
        consts,
        out.iter()
            .map(|o| o.1)
            .collect::<Vec<f64>>()
            .into_pyarray(py),
        out.iter()
            .map(|o| o.2)
            .collect::<Vec<f64>>()
            .into_pyarray(py),
    ))
}

// ---------------------------------------------------------------------------------------------
// ULP errors

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
    let progs = to_programs(programs, false)?;
    check_inputs(&progs, 1)?; // before the arrays' checks, as always (SampleScan checks it too)
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
    let jit = detached(py, || JitBatch::compile(&progs))?;
    let mut scan = SampleScan::new(&progs, &jit, (x, r, c))?;
    run_steps(py, scan.len(), scan.steps(), |cols| scan.run(cols))?;
    stats_dict(py, &scan.finish())
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
    let t = Target::named(name)?;
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
    let (cols, argmax_x, undecided) = exhaustive_scan(py, vec![program], name, a, b)?;
    Ok((cols, argmax_x[0], undecided))
}

/// Errors of float32 programs over every float32 in [a, b] against a built-in target, all in
/// one pass over the domain (each chunk's reference values computed once for all programs).
/// Returns the statistics (one entry per program), the input where each program's error is
/// largest, and the undecided inputs (the same for every program).
#[pyfunction]
fn exhaustive_ulp_errors<'py>(
    py: Python<'py>,
    programs: Vec<RawProgram<'py>>,
    name: &str,
    a: f32,
    b: f32,
) -> PyResult<ScannedArrays<'py>> {
    let (cols, argmax_x, undecided) = exhaustive_scan(py, programs, name, a, b)?;
    Ok((cols, argmax_x.into_pyarray(py), undecided))
}

/// Statistics, each program's worst input and the undecided inputs of an exhaustive scan.
type Scanned<'py> = (Bound<'py, PyDict>, Vec<f32>, Bound<'py, PyArray1<f32>>);
type ScannedArrays<'py> = (
    Bound<'py, PyDict>,
    Bound<'py, PyArray1<f32>>,
    Bound<'py, PyArray1<f32>>,
);

fn exhaustive_scan<'py>(
    py: Python<'py>,
    programs: Vec<RawProgram<'py>>,
    name: &str,
    a: f32,
    b: f32,
) -> PyResult<Scanned<'py>> {
    let t = Target::named(name)?;
    let progs = to_programs(programs, false)?;
    if progs.is_empty() {
        return Err(CoreError::Mismatch("no programs to verify".into()).into());
    }
    check_inputs(&progs, 1)?;
    key_range(a, b)?; // refuse a bad domain before compiling
    let jit = detached(py, || JitBatch::compile(&progs))?;
    let kernels = (0..progs.len()).map(|i| jit.get(i)).collect();
    let mut scan = ExhaustiveScan::many(&progs, kernels, t, (a, b))?;
    run_steps(py, scan.len(), scan.steps(), |k| scan.run(k))?;
    let (stats, argmax_x, undecided) = scan.finish_many();
    Ok((
        stats_dict(py, &stats)?,
        argmax_x,
        undecided.into_pyarray(py),
    ))
}

// ---------------------------------------------------------------------------------------------
// Domains

/// The keys of a and b, the first and last float32 in [a, b] (count: last - first + 1);
/// `DomainError` for NaN or reversed bounds.
#[pyfunction]
fn float32_key_range(a: f32, b: f32) -> PyResult<(i64, i64)> {
    Ok(key_range(a, b)?)
}

/// An integer argument that must lie in `[lo, hi]`: a `TypeError` for a non-integer, a
/// `DomainError` naming the range for any integer outside it (however large).
fn int_in(obj: &Bound<'_, PyAny>, what: &str, lo: i64, hi: i64, range: &str) -> PyResult<i64> {
    let out_of_range = || {
        PyErr::from(CoreError::Domain(format!(
            "{what} {} is outside {range} [{lo}, {hi}]",
            obj.str().map_or_else(|_| "?".into(), |s| s.to_string())
        )))
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
    let keys = "the float32 keys (-inf to inf)";
    let start = int_in(start, "start key", KEY_MIN, KEY_MAX, keys)?;
    let count = int_in(
        count,
        "count",
        0,
        KEY_MAX - KEY_MIN + 1,
        "the number of float32 keys",
    )?;
    let n = keys_span(start, count)?;
    let v = zeros::<f32, Ix1>(py, &[n], "the float32 values")?;
    {
        let mut w = v.try_readwrite()?;
        let vs = w.as_slice_mut()?;
        run_steps(py, n, Steps::plan(n, 1, 1, CHUNK), |k| {
            from_keys_into(start, k.start, &mut vs[k]);
        })?;
    }
    Ok(v)
}

// ---------------------------------------------------------------------------------------------
// Introspection

/// Which float32 programs run as JIT-compiled machine code here (the rest are interpreted).
#[pyfunction]
fn jit_compiled(py: Python<'_>, programs: Vec<RawProgram<'_>>) -> PyResult<Vec<bool>> {
    let progs = to_programs(programs, false)?;
    detached(py, || {
        let batch = JitBatch::compile(&progs);
        (0..progs.len()).map(|i| batch.get(i).is_some()).collect()
    })
}

/// The calling thread's floating-point control register (MXCSR on `x86_64`: rounding control in
/// bits 13-14, flush-to-zero bit 15, denormals-are-zero bit 6), or None on other architectures.
#[pyfunction]
fn fp_control() -> Option<u32> {
    fpenv::control()
}

/// A context manager: its body runs in IEEE mode on this thread (round to nearest even,
/// subnormals kept, no flush-to-zero or denormals-are-zero, exceptions masked), whatever the
/// process set; the thread's mode is restored on exit. For Python-side computations (numpy,
/// Python floats) that pysearch checks against; the core's own calls need none (they switch by
/// themselves). A no-op on architectures other than `x86_64`.
#[pyclass(name = "ieee_mode", module = "pysearch._core", frozen)]
struct IeeeModeContext {
    /// The saved modes of the enclosing `with` blocks (the same object may be entered again).
    saved: std::sync::Mutex<Vec<Option<u32>>>,
}

#[pymethods]
impl IeeeModeContext {
    #[new]
    fn new() -> Self {
        IeeeModeContext {
            saved: std::sync::Mutex::new(Vec::new()),
        }
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        let saved = fpenv::switch_to_ieee();
        if let Ok(mut s) = slf.get().saved.lock() {
            s.push(saved);
        }
        slf
    }

    #[pyo3(signature = (exc_type, exc, tb))]
    fn __exit__(
        &self,
        exc_type: &Bound<'_, PyAny>,
        exc: &Bound<'_, PyAny>,
        tb: &Bound<'_, PyAny>,
    ) -> bool {
        let _ = (exc_type, exc, tb);
        if let Ok(mut s) = self.saved.lock() {
            fpenv::restore(s.pop().flatten());
        }
        false
    }
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

/// Instruction set the JIT compiles float32 programs for here ("avx512" or "avx2"), or None
/// when it is off (`PYSEARCH_NO_JIT`) or the CPU has neither; `PYSEARCH_JIT_ISA=avx2` caps it.
#[pyfunction]
fn jit_isa() -> Option<&'static str> {
    crate::jit::jit_isa().map(crate::jit::Isa::name)
}

/// The core's op table, in opcode order: (name, arity, float32 supported, float64 supported,
/// compiled by the JIT on CPUs where it runs).
#[pyfunction]
fn op_table() -> Vec<(&'static str, usize, bool, bool, bool)> {
    Op::ALL
        .iter()
        .map(|&op| {
            (
                op.name(),
                op.arity(),
                !op.float64_only(),
                true,
                jit::compiles_op(op),
            )
        })
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
    m.add_class::<IeeeModeContext>()?;
    for f in [
        wrap_pyfunction!(evaluate, m)?,
        wrap_pyfunction!(sample_ulp_errors, m)?,
        wrap_pyfunction!(reference, m)?,
        wrap_pyfunction!(exhaustive_ulp_error, m)?,
        wrap_pyfunction!(exhaustive_ulp_errors, m)?,
        wrap_pyfunction!(float32_key_range, m)?,
        wrap_pyfunction!(float32_from_keys, m)?,
        wrap_pyfunction!(isa_name, m)?,
        wrap_pyfunction!(jit_compiled, m)?,
        wrap_pyfunction!(jit_isa, m)?,
        wrap_pyfunction!(evaluate_programs, m)?,
        wrap_pyfunction!(fit_eval, m)?,
        wrap_pyfunction!(fit_constants, m)?,
        wrap_pyfunction!(fit_laws, m)?,
        wrap_pyfunction!(tune_constants, m)?,
        wrap_pyfunction!(target_names, m)?,
        wrap_pyfunction!(op_table, m)?,
        wrap_pyfunction!(fp_control, m)?,
    ] {
        m.add_function(f)?;
    }
    Ok(())
}
