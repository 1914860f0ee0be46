//! The exact Jacobian of the collocation equations: interval blocks by the chain rule through
//! the stages of either scheme, assembled into the Newton matrix.

use super::*;

impl System<'_> {
    /// Assembles the exact Jacobian of [`System::residual`] into `jac`, which must be zero
    /// (node fields must be in `ws.f`).
    pub fn jacobian(&self, t: &[f64], y: &[f64], ws: &mut Workspace, jac: &mut NewtonMatrix) {
        for j in 0..self.d() {
            jac.add(j, j, 1.0);
        }
        if self.constant_jacobian() {
            self.interval_jacobians_constant(t, y, ws, jac);
        } else {
            self.interval_jacobians(t, y, ws, jac);
        }
        self.end_jacobian(t, y, jac);
    }

    /// The interval blocks when `∂F = J` everywhere: `J²` (and for the sixth-order scheme
    /// `J³`) once, then each block `±I − h (c₁ J + c₂ J² + c₃ J³)` in `O(D²)` instead of the
    /// stage Jacobians and block products of [`System::interval_jacobians`] (`O(D³)` per
    /// interval).
    pub(super) fn interval_jacobians_constant(
        &self,
        t: &[f64],
        y: &[f64],
        ws: &mut Workspace,
        jac: &mut NewtonMatrix,
    ) {
        let d = self.d();
        let n = 2 * d;
        self.eval_jacobian(t[0], &y[..n], &mut ws.jn[0], &mut ws.field);
        product(&ws.jn[0], &ws.jn[0], &mut ws.jm_ji);
        if self.order6 {
            product(&ws.jm_ji, &ws.jn[0], &mut ws.jm_jn);
        }
        let (j1, j2, j3) = (
            ws.jn[0].as_slice(),
            ws.jm_ji.as_slice(),
            ws.jm_jn.as_slice(),
        );
        for i in 0..t.len() - 1 {
            let h = t[i + 1] - t[i];
            let row = d + i * n;
            for (node, eye) in [(0, -1.0), (1, 1.0)] {
                let [c1, c2, c3] = constant_block(h, node == 1, self.order6);
                for b in 0..n {
                    let col = b * n..(b + 1) * n;
                    let out = jac.column_mut(row, (i + node) * n + b, n);
                    let (x1, x2) = (&j1[col.clone()], &j2[col.clone()]);
                    if self.order6 {
                        let x3 = &j3[col];
                        for (a, v) in out.iter_mut().enumerate() {
                            let identity = if a == b { eye } else { 0.0 };
                            *v += identity - h * (c1 * x1[a] + c2 * x2[a] + c3 * x3[a]);
                        }
                    } else {
                        for (a, v) in out.iter_mut().enumerate() {
                            let identity = if a == b { eye } else { 0.0 };
                            *v += identity - h * (c1 * x1[a] + c2 * x2[a]);
                        }
                    }
                }
            }
        }
    }

    /// The interval blocks from the Jacobians at every node and stage.
    pub(super) fn interval_jacobians(
        &self,
        t: &[f64],
        y: &[f64],
        ws: &mut Workspace,
        jac: &mut NewtonMatrix,
    ) {
        let n = 2 * self.d();
        // Per interval: three stage Jacobians and (shared with the next) one node Jacobian.
        let chunk = (JACOBIAN_BATCH_VALUES / (4 * n * n)).min(t.len() - 1);
        self.interval_jacobians_in(t, y, chunk, ws, jac);
    }

    /// [`System::interval_jacobians`], the sixth-order scheme's Jacobians evaluated `chunk`
    /// intervals at a time if `chunk ≥ 2`, else (and for the fourth-order scheme) point by point.
    pub(super) fn interval_jacobians_in(
        &self,
        t: &[f64],
        y: &[f64],
        chunk: usize,
        ws: &mut Workspace,
        jac: &mut NewtonMatrix,
    ) {
        let d = self.d();
        let n = 2 * d;
        let intervals = t.len() - 1;
        if self.order6 && chunk >= 2 {
            self.interval_jacobians6_batched(t, y, chunk, ws, jac);
            return;
        }
        // Node Jacobians are computed once each, carried from an interval's right end to the
        // next interval's left end.
        self.eval_jacobian(t[0], &y[..n], &mut ws.jn[0], &mut ws.field);
        for i in 0..intervals {
            if i > 0 {
                ws.jn.swap(0, 1);
            }
            self.eval_jacobian(
                t[i + 1],
                &y[(i + 1) * n..(i + 2) * n],
                &mut ws.jn[1],
                &mut ws.field,
            );
            let h = t[i + 1] - t[i];
            let (y0, y1) = (&y[i * n..(i + 1) * n], &y[(i + 1) * n..(i + 2) * n]);
            if self.order6 {
                self.interval_jacobian6(t, y, i, ws, jac);
                continue;
            }
            let (f0, f1) = (&ws.f[i * n..(i + 1) * n], &ws.f[(i + 1) * n..(i + 2) * n]);
            midpoint(h, y0, y1, f0, f1, &mut ws.ym);
            let tm = t[i] + 0.5 * h;
            self.eval_jacobian(tm, &ws.ym, &mut ws.jm, &mut ws.field);
            // ∂y_m/∂y_i = I/2 + h/8 J_i,  ∂y_m/∂y_{i+1} = I/2 - h/8 J_{i+1}
            // ∂r/∂y_i = -I - h/6 (J_i + 4 J_m ∂y_m/∂y_i)
            // ∂r/∂y_{i+1} = I - h/6 (J_{i+1} + 4 J_m ∂y_m/∂y_{i+1})
            product(&ws.jm, &ws.jn[0], &mut ws.jm_ji);
            product(&ws.jm, &ws.jn[1], &mut ws.jm_jn);
            let row = d + i * n;
            let (c0, c1) = (i * n, (i + 1) * n);
            // Column by column: a column of a block is contiguous both in the column-major
            // blocks and in the band storage.
            let (ji, jn1, jm) = (ws.jn[0].as_slice(), ws.jn[1].as_slice(), ws.jm.as_slice());
            let (jm_ji, jm_jn) = (ws.jm_ji.as_slice(), ws.jm_jn.as_slice());
            for b in 0..n {
                let col = b * n..(b + 1) * n;
                let left = jac.column_mut(row, c0 + b, n);
                for (a, ((v, (&x, &m)), &p)) in left
                    .iter_mut()
                    .zip(ji[col.clone()].iter().zip(&jm[col.clone()]))
                    .zip(&jm_ji[col.clone()])
                    .enumerate()
                {
                    let eye = if a == b { 1.0 } else { 0.0 };
                    *v += -eye - h / 6.0 * (x + 2.0 * m + h / 2.0 * p);
                }
                let right = jac.column_mut(row, c1 + b, n);
                for (a, ((v, (&x, &m)), &p)) in right
                    .iter_mut()
                    .zip(jn1[col.clone()].iter().zip(&jm[col.clone()]))
                    .zip(&jm_jn[col])
                    .enumerate()
                {
                    let eye = if a == b { 1.0 } else { 0.0 };
                    *v += eye - h / 6.0 * (x + 2.0 * m - h / 2.0 * p);
                }
            }
        }
    }

    /// The rows of the end condition.
    pub(super) fn end_jacobian(&self, t: &[f64], y: &[f64], jac: &mut NewtonMatrix) {
        let d = self.d();
        let n = 2 * d;
        let intervals = t.len() - 1;
        let row = d + intervals * n;
        let col = intervals * n;
        let y_end = &y[col..];
        match self.end {
            EndCondition::Fixed(_) => {
                for j in 0..d {
                    jac.add(row + j, col + j, 1.0);
                }
            }
            EndCondition::Free { eta, cost } => {
                if let Some(c) = cost {
                    let mut h = DMatrix::zeros(d, d);
                    c.hessian(&y_end[..d], t[intervals], &mut h);
                    for a in 0..d {
                        for b in 0..d {
                            jac.add(row + a, col + b, eta * h[(a, b)]);
                        }
                    }
                }
                for j in 0..d {
                    jac.add(row + j, col + d + j, 1.0);
                }
            }
            EndCondition::Projection { eta_p, .. } => {
                for a in 0..d {
                    for b in 0..d {
                        jac.add(row + a, col + b, eta_p[(a, b)]);
                    }
                    jac.add(row + a, col + d + a, 1.0);
                }
            }
        }
    }

    /// The blocks `∂r_i/∂y_i`, `∂r_i/∂y_{i+1}` of the sixth-order scheme (node Jacobians in
    /// `ws.jn`, node fields in `ws.f`), by the chain rule through the stages:
    ///
    /// ```text
    /// P₃ = J₃ ∂Y₃/∂y,  P₄ = J₄ ∂Y₄/∂y,  ∂Y₅/∂y = I/2 + h (m J_y + 2/3 (P₃ − P₄)),
    /// ∂r/∂y = s I − h (7/90 J_y + 16/45 (P₃ + P₄) + 2/15 J₅ ∂Y₅/∂y)
    /// ```
    ///
    /// (`m = −5/24`, `s = −1` for `y = y_i`; `m = 5/24`, `s = 1` for `y = y_{i+1}`)
    ///
    /// with `∂Y₃/∂y_i = 27/32 I + 9h/64 J_i`, `∂Y₃/∂y_{i+1} = 5/32 I − 3h/64 J_{i+1}` and `Y₄`
    /// mirrored.
    pub(super) fn interval_jacobian6(
        &self,
        t: &[f64],
        y: &[f64],
        i: usize,
        ws: &mut Workspace,
        jac: &mut NewtonMatrix,
    ) {
        let n = 2 * self.d();
        let h = t[i + 1] - t[i];
        let sb = &mut **ws.six.get_or_insert_with(|| Box::new(StageBlocks::new(n)));
        let (y0, y1) = (&y[i * n..(i + 1) * n], &y[(i + 1) * n..(i + 2) * n]);
        let (f0, f1) = (&ws.f[i * n..(i + 1) * n], &ws.f[(i + 1) * n..(i + 2) * n]);
        quarter_stages(h, y0, y1, f0, f1, &mut sb.y3, &mut sb.y4);
        let (t3, t4, t5) = (t[i] + 0.25 * h, t[i] + 0.75 * h, t[i] + 0.5 * h);
        self.eval(t3, &sb.y3, &mut sb.k3, &mut ws.field);
        self.eval(t4, &sb.y4, &mut sb.k4, &mut ws.field);
        middle_stage(h, y0, y1, f0, f1, &sb.k3, &sb.k4, &mut sb.y5);
        self.eval_jacobian(t3, &sb.y3, &mut sb.j3, &mut ws.field);
        self.eval_jacobian(t4, &sb.y4, &mut sb.j4, &mut ws.field);
        self.eval_jacobian(t5, &sb.y5, &mut sb.j5, &mut ws.field);
        let nodes = [ws.jn[0].as_slice(), ws.jn[1].as_slice()];
        let stages = [sb.j3.as_slice(), sb.j4.as_slice(), sb.j5.as_slice()];
        self.interval_blocks6(h, i, nodes, stages, &mut sb.chain, jac);
    }

    /// The sixth-order blocks of every interval ([`System::interval_jacobian6`]), `chunk`
    /// intervals at a time: their stages computed and their fields and node and stage
    /// Jacobians evaluated together ([`System::eval_many`], [`System::eval_jacobians`]), the
    /// same values as interval by interval, bit for bit.
    pub(super) fn interval_jacobians6_batched(
        &self,
        t: &[f64],
        y: &[f64],
        chunk: usize,
        ws: &mut Workspace,
        jac: &mut NewtonMatrix,
    ) {
        let n = 2 * self.d();
        let intervals = t.len() - 1;
        let nn = n * n;
        // Every entry is written before it is read.
        ws.jacs.resize((4 * chunk + 1) * nn, 0.0);
        let chain = &mut ws
            .six
            .get_or_insert_with(|| Box::new(StageBlocks::new(n)))
            .chain;
        for first in (0..intervals).step_by(chunk) {
            let last = (first + chunk).min(intervals);
            let c = last - first;
            // Quarter-point stages, then their fields.
            quarter_stages_of(t, y, &ws.f, first..last, &mut ws.batch_t, &mut ws.batch_y);
            ws.batch_f.resize(c * 2 * n, 0.0);
            self.eval_many(&ws.batch_t, &ws.batch_y, &mut ws.batch_f, &mut ws.field);
            // All three stages of each interval, `(Y₃, Y₄, Y₅)`, for their Jacobians.
            ws.stage_t.clear();
            ws.stage_y.resize(c * 3 * n, 0.0);
            for (k, stages) in ws.stage_y.chunks_exact_mut(3 * n).enumerate() {
                let i = first + k;
                let h = t[i + 1] - t[i];
                let (y0, y1) = (&y[i * n..(i + 1) * n], &y[(i + 1) * n..(i + 2) * n]);
                let (f0, f1) = (&ws.f[i * n..(i + 1) * n], &ws.f[(i + 1) * n..(i + 2) * n]);
                let (k3, k4) = ws.batch_f[k * 2 * n..(k + 1) * 2 * n].split_at(n);
                let (y34, y5) = stages.split_at_mut(2 * n);
                y34.copy_from_slice(&ws.batch_y[k * 2 * n..(k + 1) * 2 * n]);
                middle_stage(h, y0, y1, f0, f1, k3, k4, y5);
                ws.stage_t
                    .extend([t[i] + 0.25 * h, t[i] + 0.75 * h, t[i] + 0.5 * h]);
            }
            // A chunk's first node Jacobian is its predecessor's last, evaluated again: one
            // point per chunk, where most meshes of small systems are one chunk.
            let (node_j, stage_j) = ws.jacs.split_at_mut((c + 1) * nn);
            let nodes_y = &y[first * n..(last + 1) * n];
            self.eval_jacobians(&t[first..=last], nodes_y, node_j, &mut ws.field);
            let stage_j = &mut stage_j[..3 * c * nn];
            self.eval_jacobians(&ws.stage_t, &ws.stage_y, stage_j, &mut ws.field);
            let (node_j, stage_j) = (&*node_j, &*stage_j);
            let node = |k: usize| &node_j[k * nn..(k + 1) * nn];
            let stage = |k: usize| &stage_j[k * nn..(k + 1) * nn];
            for k in 0..c {
                let i = first + k;
                let h = t[i + 1] - t[i];
                let nodes = [node(k), node(k + 1)];
                let stages = [stage(3 * k), stage(3 * k + 1), stage(3 * k + 2)];
                self.interval_blocks6(h, i, nodes, stages, chain, jac);
            }
        }
    }

    /// Adds interval `i`'s blocks to `jac` from its node Jacobians `J_i`, `J_{i+1}` and stage
    /// Jacobians `J₃`, `J₄`, `J₅` (see [`System::interval_jacobian6`]), all column-major.
    pub(super) fn interval_blocks6(
        &self,
        h: f64,
        i: usize,
        nodes: [&[f64]; 2],
        [j3, j4, j5]: [&[f64]; 3],
        sb: &mut ChainProducts,
        jac: &mut NewtonMatrix,
    ) {
        let n = 2 * self.d();
        let [q0, q1, q2, q3] = mirk6::QUARTER;
        let [m0, _, m2, _] = mirk6::MIDDLE;
        let [w0, w1, w2] = mirk6::WEIGHTS;
        let row = self.d() + i * n;
        // (node Jacobian, column offset, ∂Y₃ weights, ∂Y₄ weights, Y₅'s weight of J_y, ±I)
        let sides = [
            (0, i * n, [q0, q2], [q1, -q3], m0, -1.0),
            (1, (i + 1) * n, [q1, q3], [q0, -q2], -m0, 1.0),
        ];
        for (node, c0, [a3, b3], [a4, b4], m, eye) in sides {
            let jy = nodes[node];
            product_of(j3, jy, &mut sb.p3);
            product_of(j4, jy, &mut sb.p4);
            // P₃ = a₃ J₃ + b₃ h J₃ J_y (and P₄), then ∂Y₅/∂y.
            for (((p3, p4), (&j3, &j4)), (a5, &x)) in sb
                .p3
                .as_mut_slice()
                .iter_mut()
                .zip(sb.p4.as_mut_slice().iter_mut())
                .zip(j3.iter().zip(j4))
                .zip(sb.a5.as_mut_slice().iter_mut().zip(jy))
            {
                *p3 = a3 * j3 + b3 * h * *p3;
                *p4 = a4 * j4 + b4 * h * *p4;
                *a5 = h * (m * x + m2 * (*p3 - *p4));
            }
            for k in 0..n {
                sb.a5[(k, k)] += 0.5;
            }
            product_of(j5, sb.a5.as_slice(), &mut sb.p5);
            let (p3, p4, p5) = (sb.p3.as_slice(), sb.p4.as_slice(), sb.p5.as_slice());
            for b in 0..n {
                let col = b * n..(b + 1) * n;
                let out = jac.column_mut(row, c0 + b, n);
                for (a, (v, q)) in out.iter_mut().zip(col).enumerate() {
                    let identity = if a == b { eye } else { 0.0 };
                    *v += identity - h * (w0 * jy[q] + w1 * (p3[q] + p4[q]) + w2 * p5[q]);
                }
            }
        }
    }
}
