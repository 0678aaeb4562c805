//! The one binding module: converts Python/numpy values to core types, runs the work with
//! the GIL released, converts results back. Core errors become named Python exceptions.

use std::sync::atomic::{AtomicBool, Ordering};

use numpy::{
    IntoPyArray, PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2,
    PyUntypedArrayMethods,
};
use pyo3::create_exception;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

use crate::domain::{from_key, key_range};
use crate::error::{exhaustive_errors, reference_values, sample_errors};
use crate::eval::{evaluate as eval_batch, isa};
use crate::program::Program;
use crate::reference::Target;
use crate::stats::Stats;

create_exception!(
    _core,
    InvalidProgram,
    PyValueError,
    "A compiled program failed validation."
);
create_exception!(
    _core,
    UnknownTarget,
    PyValueError,
    "No built-in target has this name."
);

/// Set in a forked child: rayon's global pool did not survive the fork, so work runs in a fresh pool.
static FORKED: AtomicBool = AtomicBool::new(false);

extern "C" fn mark_forked() {
    FORKED.store(true, Ordering::SeqCst);
}

/// Run `f` on rayon: the global pool normally, a fresh pool in a forked child.
fn on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> PyResult<R> {
    if FORKED.load(Ordering::SeqCst) {
        let pool = rayon::ThreadPoolBuilder::new()
            .build()
            .map_err(|e| PyValueError::new_err(format!("cannot start worker threads: {e}")))?;
        Ok(pool.install(f))
    } else {
        Ok(f())
    }
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
fn to_programs(raw: Vec<RawProgram<'_>>, float64: bool) -> PyResult<Vec<Program>> {
    raw.into_iter()
        .enumerate()
        .map(|(i, (ops, args, consts, n_inputs, output))| {
            let contiguous = |what: &str| {
                PyTypeError::new_err(format!("program {i}: {what} must be contiguous"))
            };
            // SAFETY: the GIL is held for the whole conversion and `Program::new` copies the
            // arrays before returning, so no Python code can resize or write them meanwhile
            // (this skips rust-numpy's borrow tracking, a measurable cost per program).
            let (ops, args, consts) = unsafe {
                (
                    ops.as_slice().map_err(|_| contiguous("opcodes"))?,
                    args.as_slice().map_err(|_| contiguous("args"))?,
                    consts.as_slice().map_err(|_| contiguous("consts"))?,
                )
            };
            Program::new(ops, args, consts.to_vec(), n_inputs, output, float64)
                .map_err(|e| InvalidProgram::new_err(format!("program {i}: {e}")))
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
    let bad = |what: String| InvalidProgram::new_err(format!("program {i}: {what}"));
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

fn eval_typed<'py, T: crate::float::Float + numpy::Element>(
    py: Python<'py>,
    progs: &[Program],
    x: &PyReadonlyArray2<'py, T>,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyArray2<T>>> {
    let shape = x.shape();
    let (rows, n) = (shape[0], shape[1]);
    check_inputs(progs, rows)?;
    let flat = x
        .as_slice()
        .map_err(|_| PyTypeError::new_err("x must be C-contiguous"))?;
    let inputs: Vec<&[T]> = (0..rows).map(|k| &flat[k * n..(k + 1) * n]).collect();
    let arr: Bound<'py, PyArray2<T>> = match out {
        Some(o) => {
            let a = o.cast::<PyArray2<T>>().map_err(|_| {
                PyTypeError::new_err("out must be a 2-D numpy array of the programs' dtype")
            })?;
            if a.shape() != [progs.len(), n] {
                return Err(PyValueError::new_err(format!(
                    "out has shape {:?}, expected ({}, {n})",
                    a.shape(),
                    progs.len()
                )));
            }
            a.clone()
        }
        None => PyArray2::<T>::zeros(py, [progs.len(), n], false),
    };
    {
        let mut w = arr
            .try_readwrite()
            .map_err(|e| PyValueError::new_err(format!("out is not writable: {e}")))?;
        let o = w
            .as_slice_mut()
            .map_err(|_| PyTypeError::new_err("out must be C-contiguous"))?;
        py.detach(|| on_pool(|| eval_batch(progs, &inputs, o)))?;
    }
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
        let progs = to_programs(programs, false)?;
        Ok(eval_typed(py, &progs, &x32, out)?.into_any())
    } else if let Ok(x64) = x.extract::<PyReadonlyArray2<'py, f64>>() {
        let progs = to_programs(programs, true)?;
        Ok(eval_typed(py, &progs, &x64, out)?.into_any())
    } else {
        Err(PyTypeError::new_err(
            "x must be a 2-D float32 or float64 numpy array",
        ))
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
    x: PyReadonlyArray1<'py, f32>,
    reference: PyReadonlyArray1<'py, f64>,
    rounded: PyReadonlyArray1<'py, f32>,
) -> PyResult<Bound<'py, PyDict>> {
    let progs = to_programs(programs, false)?;
    check_inputs(&progs, 1)?;
    let x = x
        .as_slice()
        .map_err(|_| PyTypeError::new_err("x must be contiguous"))?;
    let r = reference
        .as_slice()
        .map_err(|_| PyTypeError::new_err("reference must be contiguous"))?;
    let c = rounded
        .as_slice()
        .map_err(|_| PyTypeError::new_err("rounded must be contiguous"))?;
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
    let stats = py.detach(|| on_pool(|| sample_errors(&progs, x, r, c)))?;
    stats_dict(py, &stats)
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

/// float64 reference values of a built-in target, their float32 rounding, and undecided flags.
#[pyfunction]
fn reference<'py>(
    py: Python<'py>,
    name: &str,
    x: PyReadonlyArray1<'py, f32>,
) -> PyResult<(
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f32>>,
    Bound<'py, PyArray1<bool>>,
)> {
    let t = target(name)?;
    let x = x
        .as_slice()
        .map_err(|_| PyTypeError::new_err("x must be contiguous"))?;
    let (r, c, u) = py.detach(|| on_pool(|| reference_values(t, x)))?;
    Ok((r.into_pyarray(py), c.into_pyarray(py), u.into_pyarray(py)))
}

/// Points per step of an exhaustive scan between checks for Ctrl-C.
const SCAN_STEP: i64 = 1 << 24;

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
    let p = to_programs(vec![program], false)?.remove(0);
    check_inputs(std::slice::from_ref(&p), 1)?;
    let (lo, hi) = key_range(a, b).map_err(|e| PyValueError::new_err(e.0))?;
    let mut total = Stats::default();
    let mut undecided = Vec::new();
    let mut start = lo;
    while start <= hi {
        let end = (start + SCAN_STEP - 1).min(hi);
        let mut part = py.detach(|| on_pool(|| exhaustive_errors(&p, t, start, end)))?;
        part.stats.argmax += (start - lo) as u64;
        total = total.merge(part.stats);
        undecided.extend(part.undecided);
        py.check_signals()?;
        start = end + 1;
    }
    let argmax_x = from_key(lo + total.argmax as i64);
    Ok((
        stats_dict(py, &[total])?,
        argmax_x,
        undecided.into_pyarray(py),
    ))
}

/// Number of float32 values in [a, b] and the first one's key.
#[pyfunction]
fn float32_key_range(a: f32, b: f32) -> PyResult<(i64, i64)> {
    key_range(a, b).map_err(|e| PyValueError::new_err(e.0))
}

/// The float32 values with keys start, start+1, ..., start+count-1.
#[pyfunction]
fn float32_from_keys(py: Python<'_>, start: i64, count: usize) -> Bound<'_, PyArray1<f32>> {
    (0..count as i64)
        .map(|i| from_key(start + i))
        .collect::<Vec<f32>>()
        .into_pyarray(py)
}

/// Which float32 programs run as JIT-compiled machine code here (the rest are interpreted).
#[pyfunction]
fn jit_compiled(programs: Vec<RawProgram<'_>>) -> PyResult<Vec<bool>> {
    let progs = to_programs(programs, false)?;
    let batch = crate::jit::JitBatch::compile(&progs);
    Ok((0..progs.len()).map(|i| batch.get(i).is_some()).collect())
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
    m.add("InvalidProgram", m.py().get_type::<InvalidProgram>())?;
    m.add("UnknownTarget", m.py().get_type::<UnknownTarget>())?;
    m.add_function(wrap_pyfunction!(evaluate, m)?)?;
    m.add_function(wrap_pyfunction!(sample_ulp_errors, m)?)?;
    m.add_function(wrap_pyfunction!(reference, m)?)?;
    m.add_function(wrap_pyfunction!(exhaustive_ulp_error, m)?)?;
    m.add_function(wrap_pyfunction!(float32_key_range, m)?)?;
    m.add_function(wrap_pyfunction!(float32_from_keys, m)?)?;
    m.add_function(wrap_pyfunction!(isa_name, m)?)?;
    m.add_function(wrap_pyfunction!(jit_compiled, m)?)?;
    m.add_function(wrap_pyfunction!(jit_isa, m)?)?;
    m.add_function(wrap_pyfunction!(evaluate_programs, m)?)?;
    m.add_function(wrap_pyfunction!(target_names, m)?)?;
    Ok(())
}
