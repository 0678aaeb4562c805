//! Validated straight-line programs in the flat slot form produced by `Program.compile()`.
//!
//! Slots are numbered inputs first, then constants, then instruction results. Validation
//! happens here, once, so the evaluator never meets a bad index.

use crate::errors::CoreError;

/// Declares `Op` and its table from one list: variant = name in program text, arity, and
/// whether it is reserved to float64 programs. The list is in opcode order.
macro_rules! ops {
    ($($variant:ident = $name:literal, $arity:literal, $float64_only:literal;)*) => {
        /// Every operation, in opcode order (must match the registry `pysearch.ops.OPS`; Python
        /// reads this table through `_core.op_table()` and `tests/test_ops_registry.py` compares
        /// the two).
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(u8)]
        pub enum Op {
            $($variant),*
        }

        impl Op {
            pub const ALL: [Op; [$($name),*].len()] = [$(Op::$variant),*];

            /// The op's name in program text (as in `pysearch.ops`).
            pub fn name(self) -> &'static str {
                match self {
                    $(Op::$variant => $name),*
                }
            }

            pub fn arity(self) -> usize {
                match self {
                    $(Op::$variant => $arity),*
                }
            }

            /// Ops reserved to float64 programs (scaling laws).
            pub fn float64_only(self) -> bool {
                match self {
                    $(Op::$variant => $float64_only),*
                }
            }
        }
    };
}

// Adding an op: a line here (and its entry in `pysearch/ops.py`), its semantics in `float.rs`
// and `eval.rs` (and `jit.rs` for the JIT fast path), and its row in docs/program-format.md.
ops! {
    Add = "add", 2, false;
    Sub = "sub", 2, false;
    Mul = "mul", 2, false;
    Div = "div", 2, false;
    Fma = "fma", 3, false;
    Neg = "neg", 1, false;
    Abs = "abs", 1, false;
    Sqrt = "sqrt", 1, false;
    Min = "min", 2, false;
    Max = "max", 2, false;
    Rint = "rint", 1, false;
    Floor = "floor", 1, false;
    Ldexp = "ldexp", 2, false;
    Getexp = "getexp", 1, false;
    Getmant = "getmant", 1, false;
    Exp = "exp", 1, true;
    Log = "log", 1, true;
    Pow = "pow", 2, true;
}

impl Op {
    pub fn from_code(code: u8) -> Option<Op> {
        Op::ALL.get(code as usize).copied()
    }
}

/// One instruction: an op and up to three operand slots (unused ones are 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Instr {
    pub op: Op,
    pub args: [u32; 3],
}

/// A validated program. `instrs[i]` writes slot `first_value_slot() + i`.
#[derive(Clone, Debug)]
pub struct Program {
    pub n_inputs: usize,
    pub consts: Vec<f64>,
    pub instrs: Vec<Instr>,
    pub output: usize,
    /// Indices of instructions the output depends on, in order (dead code is skipped).
    pub live: Vec<usize>,
}

impl Program {
    /// Build and validate a program from its compiled arrays.
    ///
    /// `args` holds three slot indices per instruction. `float64` says which dtype it will run
    /// in (float64-only ops are rejected otherwise).
    pub fn new(
        opcodes: &[u8],
        args: &[i32],
        consts: Vec<f64>,
        n_inputs: usize,
        output: i64,
        float64: bool,
    ) -> Result<Program, CoreError> {
        if n_inputs == 0 {
            return Err(CoreError::InvalidProgram(
                "a program needs at least one input".into(),
            ));
        }
        if opcodes.is_empty() {
            return Err(CoreError::InvalidProgram(
                "a program needs at least one instruction".into(),
            ));
        }
        if args.len() != 3 * opcodes.len() {
            return Err(CoreError::InvalidProgram(format!(
                "args must hold 3 slots per instruction: {} instructions, {} args",
                opcodes.len(),
                args.len()
            )));
        }
        // slots are numbered by i32 operands: refuse counts that do not fit (or overflow usize)
        let base = n_inputs
            .checked_add(consts.len())
            .filter(|b| {
                b.checked_add(opcodes.len())
                    .is_some_and(|n| i32::try_from(n).is_ok())
            })
            .ok_or_else(|| {
                CoreError::InvalidProgram(format!(
                    "too many slots: {n_inputs} inputs, {} constants and {} instructions \
                     exceed the {} slots operands can number",
                    consts.len(),
                    opcodes.len(),
                    i32::MAX
                ))
            })?;
        let mut instrs = Vec::with_capacity(opcodes.len());
        for (i, &code) in opcodes.iter().enumerate() {
            let op = Op::from_code(code).ok_or_else(|| {
                CoreError::InvalidProgram(format!("instruction {}: unknown opcode {code}", i + 1))
            })?;
            if op.float64_only() && !float64 {
                return Err(CoreError::InvalidProgram(format!(
                    "instruction {}: {op:?} is only for float64 programs",
                    i + 1
                )));
            }
            let mut slots = [0u32; 3];
            for j in 0..3 {
                let a = args[3 * i + j];
                let limit = base + i; // only earlier slots
                if j < op.arity() {
                    if a < 0 || (a as usize) >= limit {
                        return Err(CoreError::InvalidProgram(format!(
                            "instruction {}: operand {} refers to slot {a}, but only slots 0..{limit} \
                             (inputs, constants and earlier instructions) exist",
                            i + 1,
                            j + 1
                        )));
                    }
                    slots[j] = a as u32;
                } else {
                    slots[j] = slots[0];
                }
            }
            instrs.push(Instr { op, args: slots });
        }
        if output < base as i64 || output >= (base + instrs.len()) as i64 {
            return Err(CoreError::InvalidProgram(format!(
                "output slot {output} is not an instruction result (slots {base}..{})",
                base + instrs.len()
            )));
        }
        let output = output as usize;
        let mut is_live = vec![false; instrs.len()];
        is_live[output - base] = true;
        for i in (0..instrs.len()).rev() {
            if is_live[i] {
                let ins = instrs[i];
                for &a in &ins.args[..ins.op.arity()] {
                    if (a as usize) >= base {
                        is_live[a as usize - base] = true;
                    }
                }
            }
        }
        let live = (0..instrs.len()).filter(|&i| is_live[i]).collect();
        Ok(Program {
            n_inputs,
            consts,
            instrs,
            output,
            live,
        })
    }

    /// Slot written by the first instruction.
    pub fn first_value_slot(&self) -> usize {
        self.n_inputs + self.consts.len()
    }

    /// For each instruction, the position in `live` of its last use (`usize::MAX` for the
    /// output, which lives to the end, and for dead instructions).
    pub fn last_uses(&self) -> Vec<usize> {
        let base = self.first_value_slot();
        let mut last_use = vec![usize::MAX; self.instrs.len()];
        for (pos, &i) in self.live.iter().enumerate() {
            let ins = self.instrs[i];
            for &a in &ins.args[..ins.op.arity()] {
                if a as usize >= base {
                    last_use[a as usize - base] = pos;
                }
            }
        }
        last_use[self.output - base] = usize::MAX;
        last_use
    }

    pub fn n_slots(&self) -> usize {
        self.first_value_slot() + self.instrs.len()
    }
}

/// Checks that every program takes `n_rows` inputs (`CoreError::Mismatch` naming the first that
/// does not).
pub fn check_inputs(progs: &[Program], n_rows: usize) -> Result<(), CoreError> {
    match progs.iter().position(|p| p.n_inputs != n_rows) {
        Some(i) => Err(CoreError::Mismatch(format!(
            "program {i} takes {} input(s) but x has {n_rows} row(s)",
            progs[i].n_inputs
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_forward_reference() {
        // slot 2 is the instruction's own result: not allowed.
        let e = Program::new(&[0], &[0, 2, 0], vec![1.0], 1, 2, false).unwrap_err();
        assert!(
            matches!(e, CoreError::InvalidProgram(ref m) if m.contains("refers to slot 2")),
            "{e}"
        );
    }

    #[test]
    fn rejects_unknown_opcode_and_bad_output() {
        assert!(Program::new(&[99], &[0, 0, 0], vec![], 1, 1, false).is_err());
        assert!(Program::new(&[0], &[0, 0, 0], vec![], 1, 0, false).is_err());
        assert!(Program::new(&[15], &[0, 0, 0], vec![], 1, 1, false).is_err());
        assert!(Program::new(&[15], &[0, 0, 0], vec![], 1, 1, true).is_ok());
    }

    #[test]
    fn input_count_mismatch_names_the_program() {
        let one = Program::new(&[0], &[0, 0, 0], vec![], 1, 1, false).unwrap();
        let two = Program::new(&[0], &[0, 1, 0], vec![], 2, 2, false).unwrap();
        assert_eq!(check_inputs(&[one.clone(), one.clone()], 1), Ok(()));
        let e = check_inputs(&[one, two], 1).unwrap_err();
        assert_eq!(
            e,
            CoreError::Mismatch("program 1 takes 2 input(s) but x has 1 row(s)".into())
        );
    }

    #[test]
    fn rejects_slot_counts_operands_cannot_number() {
        let e = Program::new(&[0], &[0, 0, 0], vec![], usize::MAX, 1, false).unwrap_err();
        assert!(
            matches!(e, CoreError::InvalidProgram(ref m) if m.contains("too many slots")),
            "{e}"
        );
        let e = Program::new(&[0], &[0, 0, 0], vec![], 1 << 31, 1, false).unwrap_err();
        assert!(
            matches!(e, CoreError::InvalidProgram(ref m) if m.contains("too many slots")),
            "{e}"
        );
    }

    #[test]
    fn op_table_is_in_opcode_order_with_unique_names() {
        for (i, op) in Op::ALL.iter().enumerate() {
            assert_eq!(*op as usize, i);
            assert_eq!(Op::from_code(i as u8), Some(*op));
        }
        let mut names: Vec<&str> = Op::ALL.iter().map(|op| op.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Op::ALL.len());
    }

    #[test]
    fn liveness_skips_dead_code() {
        // v0 = x + x (dead), v1 = x * x (output)
        let p = Program::new(&[0, 2], &[0, 0, 0, 0, 0, 0], vec![], 1, 2, false).unwrap();
        assert_eq!(p.live, vec![1]);
    }
}
