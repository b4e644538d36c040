//! `ba`: bundle adjustment (ADBench). Each observation projects a 3-D point
//! through a camera (Rodrigues rotation, pinhole projection, radial
//! distortion) and weighs the reprojection error; the Jacobian of all errors
//! with respect to cameras, points and weights is sparse, one 2 × 15 block per
//! observation plus one entry per weight.
//!
//! The input gives one camera, point, weight and feature and the counts
//! `n`, `m`, `p`; like GradBench's reference, the tool replicates them into
//! full arrays (observation `i` sees camera `i mod n` and point `i mod m`) and
//! computes every block.

use crate::protocol::{parse, timed, Evaluated};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tapeless::differentiable;

/// Camera parameters: rotation (3), centre (3), focal length, principal
/// point (2), radial distortion (2).
pub const N_CAM: usize = 11;
const NC: u32 = N_CAM as u32;

#[derive(Deserialize)]
struct Input {
    n: usize,
    m: usize,
    p: usize,
    cam: Vec<f64>,
    x: Vec<f64>,
    w: f64,
    feat: Vec<f64>,
}

/// The replicated problem.
pub struct Ba {
    /// Number of cameras.
    pub n: usize,
    /// Number of points.
    pub m: usize,
    /// Cameras, `n × 11`.
    pub cams: Vec<[f64; N_CAM]>,
    /// Points, `m × 3`.
    pub x: Vec<[f64; 3]>,
    /// Weights, `p`.
    pub w: Vec<f64>,
    /// Observed features, `p × 2`.
    pub feats: Vec<[f64; 2]>,
    /// (camera, point) of each observation.
    pub obs: Vec<(usize, usize)>,
}

impl TryFrom<Input> for Ba {
    type Error = String;
    fn try_from(i: Input) -> Result<Ba, String> {
        let cam: [f64; N_CAM] = i.cam.try_into().map_err(|_| "cam must have 11 elements")?;
        let x: [f64; 3] = i.x.try_into().map_err(|_| "x must have 3 elements")?;
        let feat: [f64; 2] = i.feat.try_into().map_err(|_| "feat must have 2 elements")?;
        Ok(Ba {
            n: i.n,
            m: i.m,
            cams: vec![cam; i.n],
            x: vec![x; i.m],
            w: vec![i.w; i.p],
            feats: vec![feat; i.p],
            obs: (0..i.p).map(|k| (k % i.n, k % i.m)).collect(),
        })
    }
}

/// The weighted reprojection error of one observation: the point, moved into
/// the camera's frame (Rodrigues rotation), divided by its depth, radially
/// distorted and scaled to pixels, minus the observed feature.
#[differentiable(wrt(cam, x, w))]
pub fn reproj_error(cam: &[f64; N_CAM], x: &[f64; 3], w: f64, feat: &[f64; 2]) -> [f64; 2] {
    let p = [x[0] - cam[3], x[1] - cam[4], x[2] - cam[5]];
    let sqtheta = cam[0] * cam[0] + cam[1] * cam[1] + cam[2] * cam[2];
    let mut xcam = [0.0; 3];
    if sqtheta != 0.0 {
        let theta = sqtheta.sqrt();
        let (sin, cos) = (theta.sin(), theta.cos());
        let w0 = cam[0] / theta;
        let w1 = cam[1] / theta;
        let w2 = cam[2] / theta;
        let tmp = (w0 * p[0] + w1 * p[1] + w2 * p[2]) * (1.0 - cos);
        xcam[0] = p[0] * cos + (w1 * p[2] - w2 * p[1]) * sin + w0 * tmp;
        xcam[1] = p[1] * cos + (w2 * p[0] - w0 * p[2]) * sin + w1 * tmp;
        xcam[2] = p[2] * cos + (w0 * p[1] - w1 * p[0]) * sin + w2 * tmp;
    } else {
        // first order at zero rotation: p + rot × p
        xcam[0] = p[0] + cam[1] * p[2] - cam[2] * p[1];
        xcam[1] = p[1] + cam[2] * p[0] - cam[0] * p[2];
        xcam[2] = p[2] + cam[0] * p[1] - cam[1] * p[0];
    }
    let u = xcam[0] / xcam[2];
    let v = xcam[1] / xcam[2];
    let rsq = u * u + v * v;
    let dist = 1.0 + cam[9] * rsq + cam[10] * rsq * rsq;
    [
        w * (u * dist * cam[6] + cam[7] - feat[0]),
        w * (v * dist * cam[6] + cam[8] - feat[1]),
    ]
}

/// The weight's error term.
#[differentiable]
pub fn weight_error(w: f64) -> f64 {
    1.0 - w * w
}

/// The Jacobian in compressed sparse rows: 2p rows of 15 entries (camera,
/// point, weight), then p rows of one entry (weight).
#[derive(Debug, Default, PartialEq)]
pub struct SparseMat {
    /// Row starts, `rows + 1`.
    pub rows: Vec<u32>,
    /// Column of each entry.
    pub cols: Vec<u32>,
    /// Value of each entry.
    pub vals: Vec<f64>,
}

/// What the eval receives of the objective: the errors are equal for all
/// observations, so one of each and how many.
#[derive(Serialize)]
struct Objective {
    reproj_error: Value,
    w_err: Value,
}

impl Ba {
    /// All errors: `2p` reprojection errors, `p` weight errors.
    pub fn objective(&self) -> (Vec<f64>, Vec<f64>) {
        let mut reproj = Vec::with_capacity(2 * self.obs.len());
        for (i, &(c, p)) in self.obs.iter().enumerate() {
            reproj.extend(reproj_error(
                &self.cams[c],
                &self.x[p],
                self.w[i],
                &self.feats[i],
            ));
        }
        let w_err = self.w.iter().map(|&w| weight_error(w)).collect();
        (reproj, w_err)
    }

    /// The Jacobian of [`Ba::objective`]: each 2 × 15 block is two reverse
    /// sweeps of `reproj_error`, one per error component.
    pub fn jacobian(&self) -> SparseMat {
        // 32-bit indices, as GradBench's C++ `SparseMat` (`int`)
        let (n, m, p) = (self.n as u32, self.m as u32, self.obs.len());
        let nnz = 2 * p * (N_CAM + 4) + p;
        let mut j = SparseMat {
            rows: Vec::with_capacity(3 * p + 1),
            cols: Vec::with_capacity(nnz),
            vals: Vec::with_capacity(nnz),
        };
        j.rows.push(0);
        for (i, &(c, pt)) in self.obs.iter().enumerate() {
            let (ci, pi, wi) = (c as u32, pt as u32, i as u32);
            for seed in [[1.0, 0.0], [0.0, 1.0]] {
                let (_, (dcam, dx, dw)) = reproj_error_adjoint(
                    &self.cams[c],
                    &self.x[pt],
                    self.w[i],
                    &self.feats[i],
                    seed,
                );
                j.rows.push((j.cols.len() + N_CAM + 4) as u32);
                j.cols.extend(NC * ci..NC * (ci + 1));
                j.cols.extend(NC * n + 3 * pi..NC * n + 3 * (pi + 1));
                j.cols.push(NC * n + 3 * m + wi);
                j.vals.extend(dcam);
                j.vals.extend(dx);
                j.vals.push(dw);
            }
        }
        for (i, &w) in self.w.iter().enumerate() {
            j.rows.push(j.cols.len() as u32 + 1);
            j.cols.push(NC * n + 3 * m + i as u32);
            j.vals.push(weight_error_grad(w).1);
        }
        j
    }
}

/// The first 30 entries and the last, as the eval compares them.
fn head_and_last<T: Copy>(v: &[T]) -> Vec<T> {
    let mut out: Vec<T> = v.iter().take(2 * (N_CAM + 4)).copied().collect();
    out.extend(v.last());
    out
}

/// Evaluates `objective` or `jacobian`.
pub fn evaluate(function: &str, input: Value) -> Result<Evaluated, String> {
    let ba = Ba::try_from(parse::<Input>(input.clone())?)?;
    match function {
        "objective" => {
            let mut e = timed(&input, ba, Ba::objective)?;
            let (reproj, w_err): (Vec<f64>, Vec<f64>) =
                serde_json::from_value(e.output).map_err(|e| e.to_string())?;
            e.output = serde_json::to_value(Objective {
                reproj_error: json!({ "elements": &reproj[..2.min(reproj.len())], "repeated": reproj.len() / 2 }),
                w_err: json!({ "element": w_err.first(), "repeated": w_err.len() }),
            })
            .map_err(|e| e.to_string())?;
            Ok(e)
        }
        "jacobian" => {
            let mut last = SparseMat::default();
            let mut e = timed(&input, ba, |ba| {
                last = ba.jacobian();
            })?;
            e.output = json!({
                "rows": head_and_last(&last.rows),
                "cols": head_and_last(&last.cols),
                "vals": head_and_last(&last.vals),
            });
            Ok(e)
        }
        _ => Err(super::unknown("ba", function)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, fd_gradient, rand_vec};

    fn arr<const N: usize>(v: &[f64]) -> [f64; N] {
        v.try_into().unwrap()
    }

    /// Each row of the block against finite differences of that error
    /// component, at a rotation away from zero and at zero (the other branch).
    #[test]
    fn blocks_match_finite_differences() {
        let feat = [0.3, -0.2];
        for rot_scale in [0.5, 0.0] {
            let mut cam: [f64; N_CAM] = arr(&rand_vec(1, N_CAM, 0.5));
            for r in &mut cam[..3] {
                *r *= rot_scale / 0.5;
            }
            cam[5] = -3.0; // keep the point in front of the camera
            let x: [f64; 3] = arr(&rand_vec(2, 3, 1.0));
            let w = 0.8;
            for (row, seed) in [[1.0, 0.0], [0.0, 1.0]].into_iter().enumerate() {
                let (_, (dcam, dx, dw)) = reproj_error_adjoint(&cam, &x, w, &feat, seed);
                let mut all = cam.to_vec();
                all.extend(x);
                all.push(w);
                let f =
                    |v: &[f64]| reproj_error(&arr(&v[..11]), &arr(&v[11..14]), v[14], &feat)[row];
                let mut got = dcam.to_vec();
                got.extend(dx);
                got.push(dw);
                assert_close(
                    &got,
                    &fd_gradient(f, &all),
                    &format!("row {row}, rot {rot_scale}"),
                );
            }
        }
    }

    #[test]
    fn sparse_layout() {
        let input = json!({"n": 2, "m": 3, "p": 4, "cam": rand_vec(3, 11, 0.5), "x": [0.1, 0.2, 3.0], "w": 0.9, "feat": [0.5, 0.5]});
        let ba = Ba::try_from(parse::<Input>(input).unwrap()).unwrap();
        let j = ba.jacobian();
        assert_eq!(j.rows.len(), 3 * 4 + 1);
        assert_eq!(*j.rows.last().unwrap() as usize, j.vals.len());
        assert_eq!(j.vals.len(), 2 * 4 * 15 + 4);
        // observation 3 sees camera 1 and point 0
        assert_eq!(
            &j.cols[3 * 30..3 * 30 + 11],
            &(11..22).collect::<Vec<_>>()[..]
        );
        assert_eq!(&j.cols[3 * 30 + 11..3 * 30 + 14], &[22, 23, 24]);
        assert_eq!(j.cols[3 * 30 + 14], 22 + 9 + 3);
        assert_eq!(*j.vals.last().unwrap(), -2.0 * 0.9);
    }
}
