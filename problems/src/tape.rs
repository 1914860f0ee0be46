//! Straight-line programs ("tapes") recorded from expressions, their derivatives by reverse
//! accumulation, and fast repeated evaluation.
//!
//! A parsed expression ([`crate::notation`]) is evaluated once over [`Tracer`] values, which
//! record every operation into a tape: constants (including the spec's named parameters) are
//! folded, integer powers become multiplications, identities (`x + 0`, `1·x`, …) vanish, and
//! equal subexpressions are computed once. [`gradient`] differentiates a recorded value by
//! reverse accumulation, recording the derivative rules themselves, so a gradient is a tape
//! too (and its gradient, row by row, the Hessian). Evaluating a tape is one pass over a flat
//! instruction list.
//!
//! Written here because no crate offers differentiation on a recorded program together with a
//! compiled, common-subexpression-eliminated evaluator for several outputs.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// The multiply-rotate hash of rustc's `FxHasher`, for the recorder's maps, whose keys are a
/// few machine words: std's SipHash (built for untrusted keys) was a fifth of the time to
/// compile a 20 000-variable expression. Written here because it is ten lines.
#[derive(Default, Clone, Copy)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }
    fn write_u8(&mut self, v: u8) {
        self.write_u64(u64::from(v));
    }
    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;
use std::fmt;
use std::ops::{Add, Div, Mul, Neg, Sub};

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
    index: FastMap<Instr, u32>,
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

/// Fewest points [`Tape::eval_batch`] evaluates as a batch: with fewer, computing all
/// [`LANES`] lanes costs more than the per-point dispatch it saves.
const MIN_BATCH: usize = LANES / 4;

/// Largest working set (in values) kept between evaluations; a longer tape's evaluation
/// allocates its own, so a thread never holds more than 512 KiB of scratch.
const KEPT_SLOTS: usize = 1 << 16;

thread_local! {
    /// The working set of tape evaluations on this thread, reused: every slot is written
    /// before it is read, so an evaluation neither allocates nor zeroes memory (zeroing a
    /// fresh buffer per call was 9 % of a Figure 1 solve).
    static SLOTS: Cell<Vec<f64>> = const { Cell::new(Vec::new()) };
}

/// Runs `f` on a working set of `n` values whose contents are unspecified (left over from an
/// earlier evaluation, or zero).
fn with_slots<R>(n: usize, f: impl FnOnce(&mut [f64]) -> R) -> R {
    if n > KEPT_SLOTS {
        return f(&mut vec![0.0; n]);
    }
    SLOTS.with(|cell| {
        // Taken out, so a nested evaluation (none today) would get its own buffer.
        let mut v = cell.take();
        if v.len() < n {
            v.resize(n, 0.0);
        }
        let r = f(&mut v[..n]);
        cell.set(v);
        r
    })
}

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

    /// Whether outputs `a` and `b` are the same value: the same constant or the same step.
    /// Recorded in one tape, two expressions that the recording canonicalises alike
    /// (constants folded, identities removed, commutative operands ordered, equal
    /// subexpressions shared) end in the same step.
    pub(crate) fn same_output(&self, a: usize, b: usize) -> bool {
        self.outputs[a] == self.outputs[b]
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
    /// of once per step per point, and each step is a loop the compiler vectorises (fewer than
    /// [`MIN_BATCH`] points, or a tape whose batch working set would exceed [`KEPT_SLOTS`]
    /// values, are evaluated point by point instead). The
    /// arithmetic per point is that of [`Tape::eval`], bit for bit (up to the sign of a zero
    /// from `min`/`max` of `+0` and `−0`, which Rust leaves unspecified).
    ///
    /// # Panics
    /// If `stride` is less than the number of outputs or `out` is too short for the last
    /// point's outputs.
    pub(crate) fn eval_batch(&self, points: Points<'_>, out: &mut [f64], stride: usize) {
        check_strided_output(points.len(), self.outputs.len(), out, stride);
        // Point by point (the same values) where a batch would not pay: too few points to fill
        // the lanes, or a working set too large to keep (`slots · LANES` values, up to 1 GiB
        // for the longest dense Hessian tapes, allocated per call).
        if points.len() < MIN_BATCH || self.slots() * LANES > KEPT_SLOTS {
            let k = self.outputs.len();
            with_slots(self.slots(), |v| {
                for j in 0..points.len() {
                    let o = &mut out[j * stride..j * stride + k];
                    self.run(points.theta(j), points.t(j), v, o);
                }
            });
            return;
        }
        with_slots(self.slots() * LANES, |v| {
            self.run_batch(points, out, stride, v)
        });
    }

    /// [`Tape::eval_batch`] with the working set `v` (`slots · LANES` values, any contents).
    fn run_batch(&self, points: Points<'_>, out: &mut [f64], stride: usize, v: &mut [f64]) {
        let (nl, ni) = (self.loaded.len(), self.inputs.len());
        let base = nl + ni;
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
            // Unused lanes of the last group compute on stale inputs (of an earlier group or
            // evaluation); their results are never read.
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
        with_slots(self.slots(), |v| self.run(theta, t, v, out));
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

/// Functions of the expression language by name and arity: `(name, arguments)`.
pub(crate) const FUNCTIONS: &[(&str, usize)] = &[
    ("sin", 1),
    ("cos", 1),
    ("tan", 1),
    ("asin", 1),
    ("acos", 1),
    ("atan", 1),
    ("sinh", 1),
    ("cosh", 1),
    ("tanh", 1),
    ("asinh", 1),
    ("acosh", 1),
    ("atanh", 1),
    ("exp", 1),
    ("ln", 1),
    ("log", 1),
    ("log2", 1),
    ("log10", 1),
    ("sqrt", 1),
    ("cbrt", 1),
    ("abs", 1),
    ("signum", 1),
    ("floor", 1),
    ("ceil", 1),
    ("round", 1),
    ("trunc", 1),
    ("fract", 1),
    ("sigmoid", 1),
    ("softplus", 1),
    ("min", 2),
    ("max", 2),
    ("atan2", 2),
    ("pow", 2),
];

/// The function `name` applied to `args` (name and arity as in [`FUNCTIONS`]).
pub(crate) fn call(name: &str, args: &[Tracer]) -> Option<Tracer> {
    let u = |op| Some(unary(op, args[0]));
    let b = |op| Some(binary(op, args[0], args[1]));
    match (name, args.len()) {
        ("sin", 1) => u(Unary::Sin),
        ("cos", 1) => u(Unary::Cos),
        ("tan", 1) => u(Unary::Tan),
        ("asin", 1) => u(Unary::Asin),
        ("acos", 1) => u(Unary::Acos),
        ("atan", 1) => u(Unary::Atan),
        ("sinh", 1) => u(Unary::Sinh),
        ("cosh", 1) => u(Unary::Cosh),
        ("tanh", 1) => u(Unary::Tanh),
        ("asinh", 1) => u(Unary::Asinh),
        ("acosh", 1) => u(Unary::Acosh),
        ("atanh", 1) => u(Unary::Atanh),
        ("exp", 1) => u(Unary::Exp),
        ("ln" | "log", 1) => u(Unary::Ln),
        ("log2", 1) => u(Unary::Log2),
        ("log10", 1) => u(Unary::Log10),
        ("sqrt", 1) => u(Unary::Sqrt),
        ("cbrt", 1) => u(Unary::Cbrt),
        ("abs", 1) => u(Unary::Abs),
        ("signum", 1) => u(Unary::Signum),
        ("floor", 1) => u(Unary::Floor),
        ("ceil", 1) => u(Unary::Ceil),
        ("round", 1) => u(Unary::Round),
        ("trunc", 1) => u(Unary::Trunc),
        ("fract", 1) => u(Unary::Fract),
        // 1/(1 + e^{−x}): e^{−x} overflows to ∞ for x < −709, and 1/∞ = 0 is the right limit.
        ("sigmoid", 1) => {
            let e = unary(Unary::Exp, -args[0]);
            Some(Tracer::Const(1.0) / (Tracer::Const(1.0) + e))
        }
        // max(x, 0) + ln(1 + e^{−|x|}): no overflow for large x, no loss of digits for large −x.
        ("softplus", 1) => {
            let x = args[0];
            let tail = unary(
                Unary::Ln,
                Tracer::Const(1.0) + unary(Unary::Exp, -unary(Unary::Abs, x)),
            );
            Some(binary(Binary::Max, x, Tracer::Const(0.0)) + tail)
        }
        ("min", 2) => b(Binary::Min),
        ("max", 2) => b(Binary::Max),
        ("atan2", 2) => b(Binary::Atan2),
        ("pow", 2) => b(Binary::Powf),
        _ => None,
    }
}

/// The gradient of `output` with respect to `wrt` (inputs of the current recording), recorded
/// by reverse accumulation over the instructions `output` depends on: each derivative rule is
/// itself recorded, so shared subexpressions stay shared and constants fold. The work is a
/// small multiple of the size of `output`'s dependency cone, whatever the expression's shape.
///
/// Derivatives are those of the functions away from their kinks: `abs` has `signum` (0 at 0),
/// `min`/`max` split ties evenly, and the step functions (`floor`, `signum`, …) have 0.
pub(crate) fn gradient(output: Tracer, wrt: &[Tracer]) -> Vec<Tracer> {
    let zero = Tracer::Const(0.0);
    let Tracer::Node(root) = output else {
        return vec![zero; wrt.len()];
    };
    // The cone of `root`, read while nothing is recorded.
    let cone: Vec<(u32, Instr)> = RECORDER.with(|r| {
        let r = r.borrow();
        let Some(rec) = r.as_ref() else {
            return Vec::new();
        };
        let mut seen = std::collections::HashSet::new();
        let mut stack = vec![root];
        let mut cone = Vec::new();
        while let Some(i) = stack.pop() {
            if !seen.insert(i) {
                continue;
            }
            let instr = rec.instrs[i as usize];
            match instr {
                Instr::Unary(_, a) | Instr::Powi(a, _) => stack.push(a),
                Instr::Binary(_, a, b) => {
                    stack.push(a);
                    stack.push(b);
                }
                _ => {}
            }
            cone.push((i, instr));
        }
        // Operands precede their uses: descending indices visit every use before its operand.
        cone.sort_unstable_by_key(|c| std::cmp::Reverse(c.0));
        cone
    });
    let constant = |i: u32| {
        cone.binary_search_by(|probe| i.cmp(&probe.0))
            .ok()
            .and_then(|k| match cone[k].1 {
                Instr::Const(bits) => Some(f64::from_bits(bits)),
                _ => None,
            })
    };
    let mut adjoint: FastMap<u32, Tracer> = FastMap::default();
    adjoint.insert(root, Tracer::Const(1.0));
    let add = |adjoint: &mut FastMap<u32, Tracer>, i: u32, v: Tracer| {
        let entry = adjoint.entry(i).or_insert(zero);
        *entry = *entry + v;
    };
    let one = Tracer::Const(1.0);
    let half = Tracer::Const(0.5);
    // Operands that are recorded constants enter the rules as constants, so they fold.
    let val = |i: u32| constant(i).map_or(Tracer::Node(i), Tracer::Const);
    for &(i, instr) in &cone {
        let Some(&bar) = adjoint.get(&i) else {
            continue;
        };
        let y = val(i);
        match instr {
            Instr::Theta(_) | Instr::Time | Instr::Const(_) => {}
            Instr::Unary(op, a) => {
                let x = val(a);
                let d = match op {
                    Unary::Neg => -one,
                    Unary::Abs => unary(Unary::Signum, x),
                    Unary::Signum | Unary::Floor | Unary::Ceil | Unary::Round | Unary::Trunc => {
                        continue
                    }
                    Unary::Fract => one,
                    Unary::Sin => unary(Unary::Cos, x),
                    Unary::Cos => -unary(Unary::Sin, x),
                    Unary::Tan => one + y * y,
                    Unary::Asin => one / unary(Unary::Sqrt, one - x * x),
                    Unary::Acos => -(one / unary(Unary::Sqrt, one - x * x)),
                    Unary::Atan => one / (one + x * x),
                    Unary::Sinh => unary(Unary::Cosh, x),
                    Unary::Cosh => unary(Unary::Sinh, x),
                    Unary::Tanh => one - y * y,
                    Unary::Asinh => one / unary(Unary::Sqrt, x * x + one),
                    Unary::Acosh => one / unary(Unary::Sqrt, x * x - one),
                    Unary::Atanh => one / (one - x * x),
                    Unary::Exp => y,
                    Unary::Sqrt => half / y,
                    Unary::Cbrt => one / (Tracer::Const(3.0) * y * y),
                    Unary::Ln => one / x,
                    Unary::Log2 => one / (x * Tracer::Const(std::f64::consts::LN_2)),
                    Unary::Log10 => one / (x * Tracer::Const(std::f64::consts::LN_10)),
                };
                add(&mut adjoint, a, bar * d);
            }
            Instr::Powi(a, n) => {
                let x = val(a);
                let d = Tracer::Const(n as f64)
                    * binary(Binary::Powf, x, Tracer::Const((n - 1) as f64));
                add(&mut adjoint, a, bar * d);
            }
            Instr::Binary(op, a, b) => {
                let (x, z) = (val(a), val(b));
                let (da, db): (Option<Tracer>, Option<Tracer>) = match op {
                    Binary::Add => (Some(one), Some(one)),
                    Binary::Sub => (Some(one), Some(-one)),
                    Binary::Mul => (Some(z), Some(x)),
                    Binary::Div => (Some(one / z), Some(-(y / z))),
                    Binary::Powf => match constant(b) {
                        Some(c) => (
                            Some(
                                Tracer::Const(c) * binary(Binary::Powf, x, Tracer::Const(c - 1.0)),
                            ),
                            None,
                        ),
                        None => (
                            Some(z * binary(Binary::Powf, x, z - one)),
                            Some(y * unary(Unary::Ln, x)),
                        ),
                    },
                    Binary::Min | Binary::Max => {
                        // Which operand is chosen: (1 ∓ signum(x − z))/2, ties split evenly.
                        let s = unary(Unary::Signum, x - z);
                        let (first, second) = ((one + s) * half, (one - s) * half);
                        if op == Binary::Max {
                            (Some(first), Some(second))
                        } else {
                            (Some(second), Some(first))
                        }
                    }
                    Binary::Atan2 => {
                        let r = x * x + z * z;
                        (Some(z / r), Some(-(x / r)))
                    }
                };
                if let Some(da) = da {
                    add(&mut adjoint, a, bar * da);
                }
                if let Some(db) = db {
                    add(&mut adjoint, b, bar * db);
                }
            }
        }
    }
    wrt.iter()
        .map(|w| match w {
            Tracer::Node(i) => adjoint.get(i).copied().unwrap_or(zero),
            Tracer::Const(_) => zero,
        })
        .collect()
}

/// Instructions recorded so far on this thread (0 outside a recording): a work measure for
/// callers that build derivatives.
pub(crate) fn recorded() -> usize {
    RECORDER.with(|r| r.borrow().as_ref().map_or(0, |rec| rec.instrs.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use exmex::Express;

    /// `text` traced with `x, y` as coordinates 0 and 1, `t` as time and the parameters folded.
    fn trace_text(text: &str, params: &[(&str, f64)]) -> Tracer {
        let node = crate::notation::parse(text).unwrap();
        crate::notation::trace(&node, &|name| match name {
            "x" => Tape::input(Input::Theta(0)),
            "y" => Tape::input(Input::Theta(1)),
            "t" => Tape::input(Input::Time),
            "PI" | "π" => Tracer::Const(std::f64::consts::PI),
            "E" => Tracer::Const(std::f64::consts::E),
            "TAU" => Tracer::Const(std::f64::consts::TAU),
            other => Tracer::Const(params.iter().find(|p| p.0 == other).unwrap().1),
        })
    }

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
        Tape::record(|| {
            let f = trace_text(text, &params);
            vec![f, Tracer::Const(1.5), f * f]
        })
    }

    /// Evaluation of many points at once (whole groups of lanes and a partial one, strided
    /// inputs and outputs) gives the single-point results bit for bit.
    #[test]
    fn batch_evaluation_matches_pointwise_bit_for_bit() {
        let points = 2 * LANES + 6;
        let mut rnd = crate::testbed::unit(11);
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
        let mut rnd = crate::testbed::unit(7);
        for text in texts {
            // exmex reads the text rewritten with its own precedence rules: an independent
            // parser and interpreter.
            let reference =
                exmex::parse::<f64>(&crate::notation::normalise(text).unwrap()).unwrap();
            let names: Vec<String> = reference.var_names().to_vec();
            let tape = Tape::record(|| vec![trace_text(text, &params)]);
            for _ in 0..20 {
                let (x, y, t) = (0.05 + 0.9 * rnd(), 0.05 + 0.9 * rnd(), rnd());
                let args: Vec<f64> = names
                    .iter()
                    .map(|n| match n.as_str() {
                        "x" => x,
                        "y" => y,
                        "t" => t,
                        other => params.iter().find(|p| p.0 == other).unwrap().1,
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
            let tape = Tape::record(|| vec![trace_text(text, &[])]);
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
        let tape = Tape::record(|| vec![trace_text("(x^2 + 1*y - 0)*(x^2 + y) + 2^3", &[])]);
        // θ0, θ1, θ0·θ0, (θ0² + θ1), its square and its sum with the immediate 8: 6 slots.
        assert_eq!(tape.len(), 6, "{:?}", tape.steps);
        assert_eq!(tape.consts, [8.0]);
        assert_eq!(tape.eval_one(&[2.0, 3.0], 0.0), 57.0);
    }
}
