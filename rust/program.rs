//! Validated straight-line programs in the flat slot form produced by `Program.compile()`.
//!
//! Slots are numbered inputs first, then constants, then instruction results. Validation
//! happens here, once, so the evaluator never meets a bad index.

use crate::errors::CoreError;

/// Every operation, in opcode order (must match `pysearch.program.OPS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Op {
    Add = 0,
    Sub,
    Mul,
    Div,
    Fma,
    Neg,
    Abs,
    Sqrt,
    Min,
    Max,
    Rint,
    Floor,
    Ldexp,
    Getexp,
    Getmant,
    Exp,
    Log,
    Pow,
}

impl Op {
    pub const ALL: [Op; 18] = [
        Op::Add,
        Op::Sub,
        Op::Mul,
        Op::Div,
        Op::Fma,
        Op::Neg,
        Op::Abs,
        Op::Sqrt,
        Op::Min,
        Op::Max,
        Op::Rint,
        Op::Floor,
        Op::Ldexp,
        Op::Getexp,
        Op::Getmant,
        Op::Exp,
        Op::Log,
        Op::Pow,
    ];

    pub fn from_code(code: u8) -> Option<Op> {
        Op::ALL.get(code as usize).copied()
    }

    pub fn arity(self) -> usize {
        match self {
            Op::Fma => 3,
            Op::Neg
            | Op::Abs
            | Op::Sqrt
            | Op::Rint
            | Op::Floor
            | Op::Getexp
            | Op::Getmant
            | Op::Exp
            | Op::Log => 1,
            _ => 2,
        }
    }

    /// Ops reserved to float64 programs (scaling laws).
    pub fn float64_only(self) -> bool {
        matches!(self, Op::Exp | Op::Log | Op::Pow)
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
    fn liveness_skips_dead_code() {
        // v0 = x + x (dead), v1 = x * x (output)
        let p = Program::new(&[0, 2], &[0, 0, 0, 0, 0, 0], vec![], 1, 2, false).unwrap();
        assert_eq!(p.live, vec![1]);
    }
}
