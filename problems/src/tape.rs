//! Straight-line programs ("tapes") compiled from exmex expressions, for fast repeated
//! evaluation.
//!
//! exmex parses and differentiates; its own evaluator walks a generic flat representation,
//! computes every power with `powf` and copies its operands on each call, which made expression
//! evaluation the largest cost in the boundary-value solver's inner loop. Instead, each
//! expression is evaluated once over [`Tracer`] values, which record every operation into a
//! tape: constants (including the spec's named parameters) are folded, integer powers become
//! multiplications, identities (`x + 0`, `1·x`, …) vanish, and equal subexpressions — common
//! between a function's partial derivatives — are computed once. Evaluating the tape is one pass
//! over a flat instruction list.
//!
//! Written here because no expression crate offers symbolic differentiation together with a
//! compiled, common-subexpression-eliminated evaluator for several outputs.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::ops::{Add, Div, Mul, Neg, Sub};
use std::str::FromStr;

use exmex::num::{Float, Num, PrimInt};

use crate::landscape::{check_strided_output, Points};

/// Functions of one argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Unary {
    Neg,
    Abs,
    Signum,
    Sin,
    Cos,
    Tan,
    Asin,
    Acos,
    Atan,
    Sinh,
    Cosh,
    Tanh,
    Asinh,
    Acosh,
    Atanh,
    Floor,
    Ceil,
    Round,
    Trunc,
    Fract,
    Exp,
    Sqrt,
    Cbrt,
    Ln,
    Log2,
    Log10,
}

impl Unary {
    fn apply(self, x: f64) -> f64 {
        match self {
            Unary::Neg => -x,
            Unary::Abs => x.abs(),
            Unary::Signum => x.signum(),
            Unary::Sin => x.sin(),
            Unary::Cos => x.cos(),
            Unary::Tan => x.tan(),
            Unary::Asin => x.asin(),
            Unary::Acos => x.acos(),
            Unary::Atan => x.atan(),
            Unary::Sinh => x.sinh(),
            Unary::Cosh => x.cosh(),
            Unary::Tanh => x.tanh(),
            Unary::Asinh => x.asinh(),
            Unary::Acosh => x.acosh(),
            Unary::Atanh => x.atanh(),
            Unary::Floor => x.floor(),
            Unary::Ceil => x.ceil(),
            Unary::Round => x.round(),
            Unary::Trunc => x.trunc(),
            Unary::Fract => x.fract(),
            Unary::Exp => x.exp(),
            Unary::Sqrt => x.sqrt(),
            Unary::Cbrt => x.cbrt(),
            Unary::Ln => x.ln(),
            Unary::Log2 => x.log2(),
            Unary::Log10 => x.log10(),
        }
    }
}

/// Functions of two arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Binary {
    Add,
    Sub,
    Mul,
    Div,
    Powf,
    Log,
    Min,
    Max,
    Atan2,
}

impl Binary {
    fn apply(self, a: f64, b: f64) -> f64 {
        match self {
            Binary::Add => a + b,
            Binary::Sub => a - b,
            Binary::Mul => a * b,
            Binary::Div => a / b,
            Binary::Powf => a.powf(b),
            Binary::Log => a.log(b),
            Binary::Min => a.min(b),
            Binary::Max => a.max(b),
            Binary::Atan2 => a.atan2(b),
        }
    }

    fn is_commutative(self) -> bool {
        matches!(self, Binary::Add | Binary::Mul | Binary::Min | Binary::Max)
    }
}

/// One tape instruction; operands are indices of earlier instructions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Instr {
    /// Coordinate `θ_i`.
    Theta(u32),
    /// Time.
    Time,
    /// A constant, by its bits (so instructions can be hashed).
    Const(u64),
    Unary(Unary, u32),
    Binary(Binary, u32, u32),
    Powi(u32, i32),
}

/// An input of a traced expression.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Input {
    Theta(usize),
    Time,
    /// A named parameter: folded into the tape as a constant.
    Constant(f64),
}

/// A value during tracing: a known constant, or the result of a recorded instruction.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Tracer {
    Const(f64),
    Node(u32),
}

impl Default for Tracer {
    fn default() -> Self {
        Tracer::Const(0.0)
    }
}

impl Tracer {
    fn constant(self) -> Option<f64> {
        match self {
            Tracer::Const(c) => Some(c),
            Tracer::Node(_) => None,
        }
    }

    /// Whether this is the constant `value`, bit for bit (so `+0` and `−0` differ).
    fn is(self, value: f64) -> bool {
        self.constant()
            .is_some_and(|c| c.to_bits() == value.to_bits())
    }
}

/// The tape being recorded on this thread.
#[derive(Default)]
struct Recorder {
    instrs: Vec<Instr>,
    index: HashMap<Instr, u32>,
}

thread_local! {
    static RECORDER: RefCell<Option<Recorder>> = const { RefCell::new(None) };
}

/// Appends `instr` (or finds an identical earlier one) and returns its value.
fn record(instr: Instr) -> Tracer {
    RECORDER.with(|r| match r.borrow_mut().as_mut() {
        Some(rec) => {
            let next = rec.instrs.len() as u32;
            let id = *rec.index.entry(instr).or_insert(next);
            if id == next {
                rec.instrs.push(instr);
            }
            Tracer::Node(id)
        }
        // Node values only exist inside a recording; anything else is a constant context.
        None => Tracer::Const(f64::NAN),
    })
}

fn node(x: Tracer) -> u32 {
    match x {
        Tracer::Node(i) => i,
        Tracer::Const(c) => match record(Instr::Const(c.to_bits())) {
            Tracer::Node(i) => i,
            // Outside a recording: index 0 is never evaluated (the result is a constant).
            _ => 0,
        },
    }
}

fn unary(op: Unary, x: Tracer) -> Tracer {
    match (op, x) {
        (_, Tracer::Const(c)) => Tracer::Const(op.apply(c)),
        (Unary::Neg, Tracer::Node(i)) => {
            // −(−y) = y
            let inner = RECORDER.with(|r| {
                r.borrow()
                    .as_ref()
                    .and_then(|rec| match rec.instrs.get(i as usize) {
                        Some(Instr::Unary(Unary::Neg, j)) => Some(*j),
                        _ => None,
                    })
            });
            match inner {
                Some(j) => Tracer::Node(j),
                None => record(Instr::Unary(op, i)),
            }
        }
        (_, Tracer::Node(i)) => record(Instr::Unary(op, i)),
    }
}

fn binary(op: Binary, a: Tracer, b: Tracer) -> Tracer {
    if let (Some(x), Some(y)) = (a.constant(), b.constant()) {
        return Tracer::Const(op.apply(x, y));
    }
    // Identities that hold bit for bit for every operand, signed zeros, NaN and infinities
    // included: −0 is the additive identity (+0 + −0 = +0 ≠ −0), so `x + 0` and `0 − x` stay.
    match op {
        Binary::Add if a.is(-0.0) => return b,
        Binary::Add if b.is(-0.0) => return a,
        Binary::Sub if b.is(0.0) => return a,
        Binary::Sub if a.is(-0.0) => return unary(Unary::Neg, b),
        Binary::Mul if a.is(1.0) => return b,
        Binary::Mul | Binary::Div if b.is(1.0) => return a,
        Binary::Mul if a.is(-1.0) => return unary(Unary::Neg, b),
        Binary::Mul | Binary::Div if b.is(-1.0) => return unary(Unary::Neg, a),
        Binary::Powf => {
            if let Some(k) = b.constant() {
                if k == 1.0 {
                    return a;
                }
                if k == 2.0 {
                    return binary(Binary::Mul, a, a);
                }
                // Small positive integer powers by repeated multiplication: within a few ulps
                // of `powf` and no spurious underflow (negative powers stay with `powf`).
                if k.fract() == 0.0 && (3.0..=16.0).contains(&k) {
                    return record(Instr::Powi(node(a), k as i32));
                }
            }
        }
        _ => {}
    }
    let (mut i, mut j) = (node(a), node(b));
    if op.is_commutative() && j < i {
        std::mem::swap(&mut i, &mut j);
    }
    record(Instr::Binary(op, i, j))
}

/// What a tape step computes; a one-byte code, so evaluation dispatches through one jump
/// table (the recorded [`Instr`], with nested operator enums, would take a decision tree).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Add,
    Sub,
    Mul,
    Div,
    /// Arithmetic with a constant operand `consts[b]`: `v[a] + c`, `v[a] − c`, `c − v[a]`,
    /// `v[a]·c`, `v[a]/c`, `c/v[a]`.
    AddC,
    SubC,
    CSub,
    MulC,
    DivC,
    CDiv,
    Powi,
    Unary(Unary),
    Binary(Binary),
}

/// One evaluation step: `op` applied to the values in slots `a` and `b` (for `Powi`, `b` is the
/// exponent; for the constant-operand ops, the index of the constant).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Step {
    op: Op,
    a: u32,
    b: u32,
}

/// The time input, among the coordinate indices of [`Tape::inputs`].
const TIME: u32 = u32::MAX;

/// A compiled straight-line program with several outputs.
///
/// Values live in slots: first the constants that need one, then the inputs, then one slot per
/// step. Constants of `+ − · /` are immediate operands instead (most constants of a folded
/// expression are), so the interpreted loop runs only over arithmetic.
#[derive(Clone, PartialEq)]
pub(crate) struct Tape {
    /// Constants loaded into the first slots (operands of functions other than `+ − · /`).
    loaded: Vec<f64>,
    /// Immediate operands of the constant-operand ops.
    consts: Vec<f64>,
    /// The coordinate loaded into each input slot ([`TIME`] for `t`).
    inputs: Vec<u32>,
    steps: Vec<Step>,
    /// Each output is a constant or a slot's value.
    outputs: Vec<Output>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Output {
    Const(f64),
    Node(u32),
}

impl fmt::Debug for Tape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Tape({} slots, {} outputs)",
            self.slots(),
            self.outputs.len()
        )
    }
}

/// Points evaluated together by [`Tape::eval_batch`]: enough to amortise each step's
/// dispatch over a loop the compiler vectorises. The working set is `8·LANES` bytes per tape
/// slot, so it stays in a 32 KiB first-level cache up to about 120 slots (the Figure 1 field
/// tapes have 10 to 30); longer tapes spill to the second level, which costs far less than
/// the dispatch this saves.
const LANES: usize = 32;

/// `dst = f(a, k)` lane by lane, for a step with one slot operand and a scalar `k`.
#[inline(always)]
fn map(dst: &mut [f64; LANES], a: &[f64; LANES], f: impl Fn(f64, f64) -> f64, k: f64) {
    for (d, &x) in dst.iter_mut().zip(a) {
        *d = f(x, k);
    }
}

/// `dst = f(a, b)` lane by lane.
#[inline(always)]
fn zip_map(
    dst: &mut [f64; LANES],
    a: &[f64; LANES],
    b: &[f64; LANES],
    f: impl Fn(f64, f64) -> f64,
) {
    for ((d, &x), &y) in dst.iter_mut().zip(a).zip(b) {
        *d = f(x, y);
    }
}

/// Working-set sizes kept on the stack; longer tapes use the heap.
const SMALL: usize = 16;
const MEDIUM: usize = 256;

impl Tape {
    /// Records the values `build` returns from traced inputs into one tape, with shared
    /// subexpressions computed once and unused instructions removed.
    pub(crate) fn record(build: impl FnOnce() -> Vec<Tracer>) -> Self {
        /// Puts back the enclosing recording (if any) on drop, also when `build` unwinds.
        struct Restore(Option<Recorder>);
        impl Drop for Restore {
            fn drop(&mut self) {
                let previous = self.0.take();
                RECORDER.with(|r| r.replace(previous));
            }
        }
        let restore = Restore(RECORDER.with(|r| r.replace(Some(Recorder::default()))));
        let results = build();
        let rec = RECORDER.with(|r| r.take()).unwrap_or_default();
        drop(restore);
        Self::compact(rec.instrs, &results)
    }

    /// The tracer for `input` (call only inside [`Tape::record`]).
    pub(crate) fn input(input: Input) -> Tracer {
        match input {
            Input::Theta(i) => record(Instr::Theta(i as u32)),
            Input::Time => record(Instr::Time),
            Input::Constant(c) => Tracer::Const(c),
        }
    }

    /// Keeps only the instructions the outputs depend on, renumbered in order.
    fn compact(instrs: Vec<Instr>, results: &[Tracer]) -> Self {
        let mut live = vec![false; instrs.len()];
        for r in results {
            if let Tracer::Node(i) = r {
                live[*i as usize] = true;
            }
        }
        for k in (0..instrs.len()).rev() {
            if !live[k] {
                continue;
            }
            match instrs[k] {
                Instr::Unary(_, a) | Instr::Powi(a, _) => live[a as usize] = true,
                Instr::Binary(_, a, b) => {
                    live[a as usize] = true;
                    live[b as usize] = true;
                }
                _ => {}
            }
        }
        // Constants that are operands of `+ − · /` become immediates; others need a slot.
        let is_const = |i: u32| matches!(instrs[i as usize], Instr::Const(_));
        let mut needs_slot = vec![false; instrs.len()];
        for (k, instr) in instrs.iter().enumerate() {
            if !live[k] {
                continue;
            }
            match *instr {
                Instr::Unary(_, a) | Instr::Powi(a, _) => needs_slot[a as usize] = true,
                Instr::Binary(Binary::Add | Binary::Sub | Binary::Mul | Binary::Div, _, _) => {}
                Instr::Binary(_, a, b) => {
                    needs_slot[a as usize] = true;
                    needs_slot[b as usize] = true;
                }
                _ => {}
            }
        }
        for r in results {
            if let Tracer::Node(i) = r {
                needs_slot[*i as usize] = true;
            }
        }
        // Slots: loaded constants, then inputs, then the remaining instructions in recorded
        // order (which is topological: operands are recorded before their uses).
        let mut renumber = vec![u32::MAX; instrs.len()];
        let mut immediate = vec![u32::MAX; instrs.len()];
        let (mut loaded, mut consts, mut inputs) = (Vec::new(), Vec::new(), Vec::new());
        for (k, instr) in instrs.iter().enumerate() {
            if let (true, Instr::Const(bits)) = (live[k], instr) {
                immediate[k] = consts.len() as u32;
                consts.push(f64::from_bits(*bits));
                if needs_slot[k] {
                    renumber[k] = loaded.len() as u32;
                    loaded.push(f64::from_bits(*bits));
                }
            }
        }
        for (k, instr) in instrs.iter().enumerate() {
            if live[k] {
                let coordinate = match instr {
                    Instr::Theta(i) => *i,
                    Instr::Time => TIME,
                    _ => continue,
                };
                renumber[k] = (loaded.len() + inputs.len()) as u32;
                inputs.push(coordinate);
            }
        }
        let mut steps = Vec::new();
        for (k, instr) in instrs.iter().enumerate() {
            if !live[k] || matches!(instr, Instr::Theta(_) | Instr::Time | Instr::Const(_)) {
                continue;
            }
            renumber[k] = (loaded.len() + inputs.len() + steps.len()) as u32;
            let map = |i: u32| renumber[i as usize];
            let imm = |i: u32| immediate[i as usize];
            let step = |op, a, b| Step { op, a, b };
            steps.push(match *instr {
                Instr::Theta(_) | Instr::Time | Instr::Const(_) => unreachable!("loaded above"),
                Instr::Unary(op, a) => step(Op::Unary(op), map(a), 0),
                Instr::Powi(a, n) => step(Op::Powi, map(a), n as u32),
                Instr::Binary(op, a, b) => match (op, is_const(a), is_const(b)) {
                    (_, true, true) => unreachable!("tracing folds constant operations"),
                    (Binary::Add, true, _) => step(Op::AddC, map(b), imm(a)),
                    (Binary::Add, _, true) => step(Op::AddC, map(a), imm(b)),
                    (Binary::Sub, true, _) => step(Op::CSub, map(b), imm(a)),
                    (Binary::Sub, _, true) => step(Op::SubC, map(a), imm(b)),
                    (Binary::Mul, true, _) => step(Op::MulC, map(b), imm(a)),
                    (Binary::Mul, _, true) => step(Op::MulC, map(a), imm(b)),
                    (Binary::Div, true, _) => step(Op::CDiv, map(b), imm(a)),
                    (Binary::Div, _, true) => step(Op::DivC, map(a), imm(b)),
                    (Binary::Add, ..) => step(Op::Add, map(a), map(b)),
                    (Binary::Sub, ..) => step(Op::Sub, map(a), map(b)),
                    (Binary::Mul, ..) => step(Op::Mul, map(a), map(b)),
                    (Binary::Div, ..) => step(Op::Div, map(a), map(b)),
                    (other, ..) => step(Op::Binary(other), map(a), map(b)),
                },
            });
        }
        let outputs = results
            .iter()
            .map(|r| match r {
                Tracer::Node(i) => Output::Node(renumber[*i as usize]),
                Tracer::Const(c) => Output::Const(*c),
            })
            .collect();
        Self {
            loaded,
            consts,
            inputs,
            steps,
            outputs,
        }
    }

    fn slots(&self) -> usize {
        self.loaded.len() + self.inputs.len() + self.steps.len()
    }

    /// The tape whose output `k` is this tape's output `picks[k]` (reordered, repeated).
    pub(crate) fn select_outputs(mut self, picks: &[usize]) -> Self {
        self.outputs = picks.iter().map(|&k| self.outputs[k]).collect();
        self
    }

    /// Number of outputs.
    pub(crate) fn outputs(&self) -> usize {
        self.outputs.len()
    }

    /// Number of values computed or loaded (after simplification and sharing).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.slots()
    }

    /// Evaluates every output at several points: output `k` of point `j` goes to
    /// `out[j·stride + k]`.
    ///
    /// Points are taken [`LANES`] at a time and each step runs over all of them, so the
    /// interpretation cost (dispatch, operand lookup) is paid once per step per group instead
    /// of once per step per point, and each step is a loop the compiler vectorises. The
    /// arithmetic per point is that of [`Tape::eval`], bit for bit (up to the sign of a zero
    /// from `min`/`max` of `+0` and `−0`, which Rust leaves unspecified).
    ///
    /// # Panics
    /// If `stride` is less than the number of outputs or `out` is too short for the last
    /// point's outputs.
    pub(crate) fn eval_batch(&self, points: Points<'_>, out: &mut [f64], stride: usize) {
        check_strided_output(points.len(), self.outputs.len(), out, stride);
        let (nl, ni) = (self.loaded.len(), self.inputs.len());
        let base = nl + ni;
        let mut v = vec![0.0; self.slots() * LANES];
        for (k, &c) in self.loaded.iter().enumerate() {
            v[k * LANES..(k + 1) * LANES].fill(c);
        }
        let c = &self.consts;
        for first in (0..points.len()).step_by(LANES) {
            let lanes = LANES.min(points.len() - first);
            for (k, &i) in self.inputs.iter().enumerate() {
                let row = &mut v[(nl + k) * LANES..(nl + k) * LANES + lanes];
                for (l, x) in row.iter_mut().enumerate() {
                    *x = if i == TIME {
                        points.t(first + l)
                    } else {
                        points.coordinate(first + l, i as usize)
                    };
                }
            }
            // Unused lanes of the last group compute on stale inputs; their results are
            // never read.
            for (k, step) in self.steps.iter().enumerate() {
                let (done, rest) = v.split_at_mut((base + k) * LANES);
                let dst: &mut [f64; LANES] = (&mut rest[..LANES]).try_into().unwrap();
                let lane = |slot: u32| -> &[f64; LANES] {
                    let s = slot as usize * LANES;
                    done[s..s + LANES].try_into().unwrap()
                };
                let a = lane(step.a);
                // The constant of the constant-operand ops.
                let k = || c[step.b as usize];
                match step.op {
                    Op::Add => zip_map(dst, a, lane(step.b), |x, y| x + y),
                    Op::Sub => zip_map(dst, a, lane(step.b), |x, y| x - y),
                    Op::Mul => zip_map(dst, a, lane(step.b), |x, y| x * y),
                    Op::Div => zip_map(dst, a, lane(step.b), |x, y| x / y),
                    Op::AddC => map(dst, a, |x, k| x + k, k()),
                    Op::SubC => map(dst, a, |x, k| x - k, k()),
                    Op::CSub => map(dst, a, |x, k| k - x, k()),
                    Op::MulC => map(dst, a, |x, k| x * k, k()),
                    Op::DivC => map(dst, a, |x, k| x / k, k()),
                    Op::CDiv => map(dst, a, |x, k| k / x, k()),
                    Op::Powi => map(dst, a, |x, _| x.powi(step.b as i32), 0.0),
                    Op::Unary(op) => map(dst, a, |x, _| op.apply(x), 0.0),
                    Op::Binary(op) => zip_map(dst, a, lane(step.b), |x, y| op.apply(x, y)),
                }
            }
            for l in 0..lanes {
                let row = &mut out[(first + l) * stride..];
                for (o, output) in row.iter_mut().zip(&self.outputs) {
                    *o = match *output {
                        Output::Const(c) => c,
                        Output::Node(i) => v[i as usize * LANES + l],
                    };
                }
            }
        }
    }

    /// Evaluates every output at `(θ, t)` into `out` (length [`Tape::outputs`]).
    pub(crate) fn eval(&self, theta: &[f64], t: f64, out: &mut [f64]) {
        let n = self.slots();
        if n <= SMALL {
            self.run(theta, t, &mut [0.0; SMALL][..n], out);
        } else if n <= MEDIUM {
            self.run(theta, t, &mut [0.0; MEDIUM][..n], out);
        } else {
            self.run(theta, t, &mut vec![0.0; n], out);
        }
    }

    /// The first output at `(θ, t)`.
    pub(crate) fn eval_one(&self, theta: &[f64], t: f64) -> f64 {
        let mut out = [0.0];
        if self.outputs.len() == 1 {
            self.eval(theta, t, &mut out);
        }
        out[0]
    }

    fn run(&self, theta: &[f64], t: f64, v: &mut [f64], out: &mut [f64]) {
        let (nl, ni) = (self.loaded.len(), self.inputs.len());
        if nl > 0 {
            v[..nl].copy_from_slice(&self.loaded);
        }
        for (slot, &i) in v[nl..nl + ni].iter_mut().zip(&self.inputs) {
            *slot = if i == TIME { t } else { theta[i as usize] };
        }
        let base = nl + ni;
        let c = &self.consts;
        for (k, step) in self.steps.iter().enumerate() {
            let (a, b) = (step.a as usize, step.b as usize);
            v[base + k] = match step.op {
                Op::Add => v[a] + v[b],
                Op::Sub => v[a] - v[b],
                Op::Mul => v[a] * v[b],
                Op::Div => v[a] / v[b],
                Op::AddC => v[a] + c[b],
                Op::SubC => v[a] - c[b],
                Op::CSub => c[b] - v[a],
                Op::MulC => v[a] * c[b],
                Op::DivC => v[a] / c[b],
                Op::CDiv => c[b] / v[a],
                Op::Powi => v[a].powi(step.b as i32),
                Op::Unary(op) => op.apply(v[a]),
                Op::Binary(op) => op.apply(v[a], v[b]),
            };
        }
        for (o, output) in out.iter_mut().zip(&self.outputs) {
            *o = match *output {
                Output::Const(c) => c,
                Output::Node(i) => v[i as usize],
            };
        }
    }
}

// What exmex needs of a number type: arithmetic, its `Float` functions, literals.

impl PartialEq for Tracer {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Tracer::Node(a), Tracer::Node(b)) => a == b,
            _ => match (self.constant(), other.constant()) {
                (Some(a), Some(b)) => a == b,
                _ => false,
            },
        }
    }
}

impl PartialOrd for Tracer {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        self.constant()?.partial_cmp(&other.constant()?)
    }
}

impl FromStr for Tracer {
    type Err = std::num::ParseFloatError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse::<f64>().map(Tracer::Const)
    }
}

impl From<f32> for Tracer {
    fn from(x: f32) -> Self {
        Tracer::Const(x as f64)
    }
}

impl From<u8> for Tracer {
    fn from(x: u8) -> Self {
        Tracer::Const(x as f64)
    }
}

macro_rules! arithmetic {
    ($($trait:ident $method:ident $op:ident),*) => {$(
        impl $trait for Tracer {
            type Output = Tracer;
            fn $method(self, rhs: Tracer) -> Tracer {
                binary(Binary::$op, self, rhs)
            }
        }
    )*};
}
arithmetic!(Add add Add, Sub sub Sub, Mul mul Mul, Div div Div);

impl Neg for Tracer {
    type Output = Tracer;
    fn neg(self) -> Tracer {
        unary(Unary::Neg, self)
    }
}

impl Num for Tracer {
    fn zero() -> Self {
        Tracer::Const(0.0)
    }
    fn one() -> Self {
        Tracer::Const(1.0)
    }
}

macro_rules! unary_functions {
    ($($name:ident $op:ident),*) => {$(
        fn $name(self) -> Self {
            unary(Unary::$op, self)
        }
    )*};
}

impl Float for Tracer {
    fn from_f64(f: f64) -> Self {
        Tracer::Const(f)
    }
    fn to_f64(self) -> f64 {
        self.constant().unwrap_or(f64::NAN)
    }
    fn from_f32(f: f32) -> Self {
        Tracer::Const(f as f64)
    }
    fn from_int<I: PrimInt>(n: I) -> Self {
        Tracer::Const(n.to_i64() as f64)
    }
    unary_functions!(
        log2 Log2, log10 Log10, abs Abs, sin Sin, cos Cos, tan Tan, asin Asin, acos Acos,
        atan Atan, sqrt Sqrt, signum Signum, sinh Sinh, cosh Cosh, tanh Tanh, asinh Asinh,
        acosh Acosh, atanh Atanh, floor Floor, ceil Ceil, round Round, trunc Trunc,
        fract Fract, exp Exp, cbrt Cbrt, ln Ln
    );
    fn is_nan(self) -> bool {
        self.constant().is_some_and(f64::is_nan)
    }
    fn powf(self, n: Self) -> Self {
        binary(Binary::Powf, self, n)
    }
    fn log(self, n: Self) -> Self {
        binary(Binary::Log, self, n)
    }
    fn min(self, n: Self) -> Self {
        binary(Binary::Min, self, n)
    }
    fn max(self, n: Self) -> Self {
        binary(Binary::Max, self, n)
    }
    fn atan2(self, n: Self) -> Self {
        binary(Binary::Atan2, self, n)
    }
    fn powi(self, n: i32) -> Self {
        binary(Binary::Powf, self, Tracer::Const(n as f64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use exmex::Express;

    /// Expressions exercising every operator and function of the language.
    const EXPRESSIONS: [&str; 11] = [
        "a*(x^2-b)^2 + c*y^2 + d*x",
        "x^3 - 2*x*y + y^(-2) + x^0.5 + x^y",
        "-x + -(-y) - (x - 0) * 1 / 1 + 0 + x^1 + y^0",
        "abs(x-y) + signum(x-0.3) + sin(x)*cos(y) + tan(0.3*x)",
        "asin(0.5*x) + acos(0.4*y) + atan(x*y) + atan2(y, x)",
        "sinh(x) + cosh(y) + tanh(x*y) + asinh(x) + acosh(1+y) + atanh(0.5*x)",
        "floor(3*x) + ceil(3*y) + round(3*x) + trunc(3*y) + fract(3*x)",
        "exp(x) + sqrt(y) + cbrt(x) + ln(y) + log2(y) + log10(y) + log(y)",
        "min(x, y) + max(x, y) + PI*x + E*y + TAU + π",
        "t*x + sin(t)*y + a^2",
        // Constant operands on either side of every arithmetic operator, and as operands
        // of functions (which load them into slots).
        "2/x + x/3 + (2-y)*(y-3) + 2*x*(x*3) + (2+y)/(y+3) + atan2(2, x) + max(x, 0.5)",
    ];

    /// The tape of `text` with outputs `(f, 1.5, f²)` (a constant and a repeated slot among
    /// them), `x, y` as coordinates 0 and 1, and the parameters folded.
    fn tape_with_outputs(text: &str) -> Tape {
        let params = [("a", 1.5), ("b", 0.7), ("c", -0.4), ("d", 2.0)];
        let traced = exmex::parse::<Tracer>(text).unwrap();
        let vars: Vec<Input> = traced
            .var_names()
            .iter()
            .map(|name| match name.as_str() {
                "x" => Input::Theta(0),
                "y" => Input::Theta(1),
                "t" => Input::Time,
                other => Input::Constant(params.iter().find(|p| p.0 == other).unwrap().1),
            })
            .collect();
        Tape::record(|| {
            let vars: Vec<Tracer> = vars.iter().map(|&v| Tape::input(v)).collect();
            let f = traced.eval(&vars).unwrap();
            vec![f, Tracer::Const(1.5), f * f]
        })
    }

    /// Evaluation of many points at once (whole groups of lanes and a partial one, strided
    /// inputs and outputs) gives the single-point results bit for bit.
    #[test]
    fn batch_evaluation_matches_pointwise_bit_for_bit() {
        let points = 2 * LANES + 6;
        let mut state = 11u64;
        let mut rnd = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        // θ = (x, y) among three values per point.
        let values: Vec<f64> = (0..3 * points).map(|_| 0.05 + 0.9 * rnd()).collect();
        let times: Vec<f64> = (0..points).map(|_| rnd()).collect();
        for text in EXPRESSIONS {
            let tape = tape_with_outputs(text);
            let k = tape.outputs();
            let stride = k + 2;
            let mut batch = vec![f64::NAN; points * stride];
            tape.eval_batch(Points::new(&values, 2, 3, &times), &mut batch, stride);
            for j in 0..points {
                let mut single = vec![0.0; k];
                tape.eval(&values[3 * j..3 * j + 2], times[j], &mut single);
                for (o, want) in single.iter().enumerate() {
                    let got = batch[j * stride + o];
                    let same = got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan());
                    assert!(same, "{text}, point {j}, output {o}: {got:?} vs {want:?}");
                }
            }
        }
    }

    /// Every operator and function of the expression language, traced, agrees with exmex's own
    /// evaluation (an independent interpreter of the same parse) at random points.
    #[test]
    fn tape_matches_exmex_evaluation() {
        let texts = EXPRESSIONS;
        let params = [("a", 1.5), ("b", 0.7), ("c", -0.4), ("d", 2.0)];
        let mut state = 7u64;
        let mut rnd = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        for text in texts {
            let reference = exmex::parse::<f64>(text).unwrap();
            let traced = exmex::parse::<Tracer>(text).unwrap();
            let names: Vec<String> = traced.var_names().to_vec();
            let input = |name: &str| match name {
                "x" => Input::Theta(0),
                "y" => Input::Theta(1),
                "t" => Input::Time,
                other => Input::Constant(params.iter().find(|p| p.0 == other).unwrap().1),
            };
            let tape = Tape::record(|| {
                let vars: Vec<Tracer> = names.iter().map(|n| Tape::input(input(n))).collect();
                vec![traced.eval(&vars).unwrap()]
            });
            for _ in 0..20 {
                let (x, y, t) = (0.05 + 0.9 * rnd(), 0.05 + 0.9 * rnd(), rnd());
                let args: Vec<f64> = names
                    .iter()
                    .map(|n| match input(n) {
                        Input::Theta(0) => x,
                        Input::Theta(_) => y,
                        Input::Time => t,
                        Input::Constant(c) => c,
                    })
                    .collect();
                let want = reference.eval(&args).unwrap();
                let got = tape.eval_one(&[x, y], t);
                // Integer powers by multiplication and reassociated constants differ from exmex
                // by a few ulps.
                let tol = 1e-13 * (1.0 + want.abs());
                assert!(
                    (got - want).abs() <= tol,
                    "{text} at ({x}, {y}, {t}): {got} vs {want}"
                );
            }
        }
    }

    /// The identities the tape applies are exact: bit-for-bit agreement with plain evaluation at
    /// signed zeros, infinities and NaN.
    #[test]
    fn identities_are_exact_at_special_values() {
        let texts = [
            "0 - x", "x + 0", "0 + x", "x - 0", "x * 1", "1 * x", "x / 1", "x / -1", "-1 * x",
            "x ^ 1", "x ^ 2", "x ^ 3",
        ];
        for text in texts {
            let reference = exmex::parse::<f64>(text).unwrap();
            let traced = exmex::parse::<Tracer>(text).unwrap();
            let tape = Tape::record(|| vec![traced.eval(&[Tape::input(Input::Theta(0))]).unwrap()]);
            for x in [
                0.0,
                -0.0,
                1.5,
                -2.5,
                f64::INFINITY,
                f64::NEG_INFINITY,
                f64::NAN,
            ] {
                let (want, got) = (reference.eval(&[x]).unwrap(), tape.eval_one(&[x], 0.0));
                let same = want.to_bits() == got.to_bits() || (want.is_nan() && got.is_nan());
                assert!(same, "{text} at {x:?}: tape {got:?}, direct {want:?}");
            }
        }
    }

    /// Constants fold, integer powers become products, and equal subexpressions are shared.
    #[test]
    fn tape_is_simplified() {
        let ex = exmex::parse::<Tracer>("(x^2 + 1*y - 0)*(x^2 + y) + 2^3").unwrap();
        let tape = Tape::record(|| {
            let vars = [Tape::input(Input::Theta(0)), Tape::input(Input::Theta(1))];
            vec![ex.eval(&vars).unwrap()]
        });
        // θ0, θ1, θ0·θ0, (θ0² + θ1), its square and its sum with the immediate 8: 6 slots.
        assert_eq!(tape.len(), 6, "{:?}", tape.steps);
        assert_eq!(tape.consts, [8.0]);
        assert_eq!(tape.eval_one(&[2.0, 3.0], 0.0), 57.0);
    }
}
