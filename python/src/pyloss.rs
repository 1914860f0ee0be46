//! A loss written in Python: a [`Landscape`] whose values, gradients and Hessians come from
//! Python callables, evaluated on whole batches of points (the solvers evaluate meshes through
//! [`Landscape::values`], [`Landscape::gradients`] and [`Landscape::hessians`]).
//!
//! Protocol (checked at every call): `value_and_grad(theta, t)` with `theta` of shape (n, D)
//! and `t` of shape (n,) returns `(values, gradients)` of shapes (n,) and (n, D);
//! `hessian(theta, t)`, when given, returns (n, D, D). Each call takes the GIL on the solver's
//! thread. The first exception (or wrong shape) is kept and every later call returns NaN, so
//! the solve ends with a non-finite error that the caller replaces by the Python exception,
//! traceback included. Without a Hessian callable, Hessians are NaN and the need is recorded:
//! the boundary-value solver and the second-order check cannot run; the caller says so.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use nalgebra::DMatrix;
use numpy::{PyArray1, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use lossnav_problems::landscape::{Landscape, Points};

/// What a Python loss reports back to the caller after a solve.
#[derive(Default)]
pub struct Status {
    /// The first exception the callables raised (or a wrong shape), if any.
    pub error: Mutex<Option<PyErr>>,
    /// A Hessian was asked for and none was given.
    pub hessian_missing: AtomicBool,
}

/// A loss given by Python callables.
pub struct PyLoss {
    dim: usize,
    value_and_grad: Py<PyAny>,
    hessian: Option<Py<PyAny>>,
    time_dependent: bool,
    name: String,
    status: Arc<Status>,
}

impl PyLoss {
    /// The loss of dimension `dim` from its callables.
    pub fn new(
        dim: usize,
        value_and_grad: Py<PyAny>,
        hessian: Option<Py<PyAny>>,
        time_dependent: bool,
        name: String,
        status: Arc<Status>,
    ) -> Self {
        Self {
            dim,
            value_and_grad,
            hessian,
            time_dependent,
            name,
            status,
        }
    }

    fn failed(&self) -> bool {
        self.status.error.lock().map_or(true, |e| e.is_some())
    }

    fn record(&self, err: PyErr) {
        if let Ok(mut slot) = self.status.error.lock() {
            if slot.is_none() {
                *slot = Some(err);
            }
        }
    }

    /// Calls `f(theta, t)` on the batch and hands the result to `take`; on any failure the
    /// error is recorded and `false` returned.
    fn call(
        &self,
        f: &Py<PyAny>,
        points: &Points<'_>,
        take: impl FnOnce(&Bound<'_, PyAny>) -> PyResult<()>,
    ) -> bool {
        // After a cancel nothing calls into Python again: the caller has moved on, and the
        // interpreter may be shutting down.
        if self.failed() || lossnav_solvers::Budget::cancelled() {
            return false;
        }
        let n = points.len();
        let d = self.dim;
        let result = Python::attach(|py| -> PyResult<()> {
            let mut flat = Vec::with_capacity(n * d);
            let mut times = Vec::with_capacity(n);
            for j in 0..n {
                flat.extend_from_slice(points.theta(j));
                times.push(points.t(j));
            }
            let theta = PyArray1::from_vec(py, flat).reshape([n, d])?;
            let t = PyArray1::from_vec(py, times);
            let out = f.bind(py).call1((theta, t))?;
            take(&out)
        });
        match result {
            Ok(()) => true,
            Err(e) => {
                self.record(e);
                false
            }
        }
    }

    fn one(&self, theta: &[f64], t: f64) -> (Vec<f64>, [f64; 1]) {
        (theta.to_vec(), [t])
    }
}

/// `obj` as a contiguous float64 array of exactly `shape`, or a ValueError naming `what`.
fn array_of<'py>(obj: &Bound<'py, PyAny>, shape: &[usize], what: &str) -> PyResult<Vec<f64>> {
    let py = obj.py();
    let np = py.import("numpy")?;
    let arr = np.call_method1("ascontiguousarray", (obj, "float64"))?;
    let arr = arr.cast_into::<numpy::PyArrayDyn<f64>>().map_err(|_| {
        PyValueError::new_err(format!("{what}: expected a float array of shape {shape:?}"))
    })?;
    if arr.shape() != shape {
        return Err(PyValueError::new_err(format!(
            "{what}: expected shape {shape:?}, got {:?}",
            arr.shape()
        )));
    }
    Ok(arr.readonly().as_slice()?.to_vec())
}

/// The pair `(values, gradients)` of a call.
fn pair<'py>(out: &Bound<'py, PyAny>, n: usize, d: usize) -> PyResult<(Vec<f64>, Vec<f64>)> {
    let tuple = out.cast::<pyo3::types::PyTuple>().map_err(|_| {
        PyValueError::new_err(
            "the loss must return a tuple (values, gradients) of shapes (n,) and (n, D)",
        )
    })?;
    if tuple.len() != 2 {
        return Err(PyValueError::new_err(format!(
            "the loss must return (values, gradients), not a tuple of {}",
            tuple.len()
        )));
    }
    let values = array_of(&tuple.get_item(0)?, &[n], "the loss's values")?;
    let grads = array_of(&tuple.get_item(1)?, &[n, d], "the loss's gradients")?;
    Ok((values, grads))
}

impl Landscape for PyLoss {
    fn dim(&self) -> usize {
        self.dim
    }

    fn value(&self, theta: &[f64], t: f64) -> f64 {
        let mut out = [f64::NAN];
        let (th, tt) = self.one(theta, t);
        self.values(Points::new(&th, self.dim, self.dim, &tt), &mut out);
        out[0]
    }

    fn gradient(&self, theta: &[f64], t: f64, grad: &mut [f64]) {
        self.value_and_gradient(theta, t, grad);
    }

    fn value_and_gradient(&self, theta: &[f64], t: f64, grad: &mut [f64]) -> f64 {
        let (th, tt) = self.one(theta, t);
        let points = Points::new(&th, self.dim, self.dim, &tt);
        let d = self.dim;
        let mut value = f64::NAN;
        grad.fill(f64::NAN);
        self.call(&self.value_and_grad, &points, |out| {
            let (v, g) = pair(out, 1, d)?;
            value = v[0];
            grad.copy_from_slice(&g);
            Ok(())
        });
        value
    }

    fn hessian(&self, theta: &[f64], t: f64, hess: &mut DMatrix<f64>) {
        let (th, tt) = self.one(theta, t);
        let d = self.dim;
        let mut out = vec![f64::NAN; d * d];
        self.hessians(Points::new(&th, d, d, &tt), &mut out);
        hess.copy_from_slice(&out);
    }

    fn hessian_vector(&self, theta: &[f64], t: f64, v: &[f64], out: &mut [f64]) {
        let d = self.dim;
        let mut h = DMatrix::zeros(d, d);
        self.hessian(theta, t, &mut h);
        let r = &h * nalgebra::DVector::from_column_slice(v);
        out.copy_from_slice(r.as_slice());
    }

    fn values(&self, points: Points<'_>, out: &mut [f64]) {
        let (n, d) = (points.len(), self.dim);
        out.fill(f64::NAN);
        self.call(&self.value_and_grad, &points, |res| {
            let (v, _) = pair(res, n, d)?;
            out.copy_from_slice(&v);
            Ok(())
        });
    }

    fn gradients(&self, points: Points<'_>, out: &mut [f64], stride: usize) {
        let (n, d) = (points.len(), self.dim);
        for j in 0..n {
            out[j * stride..j * stride + d].fill(f64::NAN);
        }
        self.call(&self.value_and_grad, &points, |res| {
            let (_, g) = pair(res, n, d)?;
            for j in 0..n {
                out[j * stride..j * stride + d].copy_from_slice(&g[j * d..(j + 1) * d]);
            }
            Ok(())
        });
    }

    fn values_and_gradients(
        &self,
        points: Points<'_>,
        values: &mut [f64],
        grads: &mut [f64],
        stride: usize,
    ) {
        // One call of the callable for both.
        let (n, d) = (points.len(), self.dim);
        values.fill(f64::NAN);
        for j in 0..n {
            grads[j * stride..j * stride + d].fill(f64::NAN);
        }
        self.call(&self.value_and_grad, &points, |res| {
            let (v, g) = pair(res, n, d)?;
            values.copy_from_slice(&v);
            for j in 0..n {
                grads[j * stride..j * stride + d].copy_from_slice(&g[j * d..(j + 1) * d]);
            }
            Ok(())
        });
    }

    fn hessians(&self, points: Points<'_>, out: &mut [f64]) {
        let (n, d) = (points.len(), self.dim);
        out.fill(f64::NAN);
        let Some(h) = &self.hessian else {
            self.status.hessian_missing.store(true, Ordering::Relaxed);
            return;
        };
        self.call(h, &points, |res| {
            let hs = array_of(res, &[n, d, d], "the loss's Hessians")?;
            // Row-major (n, D, D) to column-major blocks: the Hessian is symmetric, but a
            // callable's rounding need not be, so transpose exactly.
            for j in 0..n {
                for r in 0..d {
                    for c in 0..d {
                        out[j * d * d + c * d + r] = hs[j * d * d + r * d + c];
                    }
                }
            }
            Ok(())
        });
    }

    fn is_time_dependent(&self) -> bool {
        self.time_dependent
    }

    fn describe(&self) -> String {
        format!(
            "Python callable {}{}",
            self.name,
            if self.hessian.is_some() {
                " (with Hessians)"
            } else {
                " (no Hessians)"
            }
        )
    }
}
