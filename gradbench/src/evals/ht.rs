//! `ht`: hand tracking (ADBench). A hand mesh is posed by 26 parameters θ
//! (global rotation and translation, then finger joint angles) through a
//! bone hierarchy and linear blend skinning; the objective is the distance of
//! each observed point to its corresponding vertex ("simple") or to a point
//! `u` of its corresponding triangle ("complicated").
//!
//! The Jacobian (rows: the `3c` errors; columns: `u`'s two coordinates for
//! the complicated variant, then θ) is assembled from four generated
//! derivatives, joined by the chain rule: [`bone_transforms_tangent`] (θ →
//! the 22 skinning transforms, forward mode, once per pose parameter),
//! [`skinned_adjoint`] (transforms → one corner's skinned position, once per
//! corner: its three coordinates read disjoint transform entries, so one
//! sweep gives all three), [`global_rotation_tangent`] (θ[0..3] → the
//! global rotation matrix, forward mode, three sweeps) and
//! [`point_error_adjoint`] (rotation, translation, corners, `u` → one
//! point's error, once per error component).

use crate::protocol::{parse, timed, Evaluated};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use tapeless::differentiable;

#[derive(Deserialize)]
struct ModelInput {
    parents: Vec<i64>,
    base_relatives: Vec<Vec<Vec<f64>>>,
    inverse_base_absolutes: Vec<Vec<Vec<f64>>>,
    base_positions: Vec<Vec<f64>>,
    weights: Vec<Vec<f64>>,
    triangles: Vec<[usize; 3]>,
    is_mirrored: bool,
}

#[derive(Deserialize)]
struct DataInput {
    model: ModelInput,
    correspondences: Vec<usize>,
    points: Vec<Vec<f64>>,
}

#[derive(Deserialize)]
struct Input {
    theta: Vec<f64>,
    data: DataInput,
    #[serde(default)]
    us: Vec<Vec<f64>>,
}

/// The hand model and the observations, flattened (matrices row-major).
pub struct Model {
    /// Number of bones.
    pub bones: usize,
    /// Parent of each bone, `-1` for the root; parents come first.
    pub parents: Vec<i64>,
    /// Each bone's rest transform relative to its parent, `bones × 16`.
    pub base_relatives: Vec<f64>,
    /// Inverses of the rest absolute transforms, `bones × 16`.
    pub inverse_base_absolutes: Vec<f64>,
    /// Rest positions (homogeneous), `vertices × 4`.
    pub base_positions: Vec<f64>,
    /// Skinning weights, `vertices × bones`.
    pub weights: Vec<f64>,
    /// Vertices of each triangle.
    pub triangles: Vec<[usize; 3]>,
    /// Whether x is mirrored.
    pub is_mirrored: bool,
    /// Vertex (simple) or triangle (complicated) of each observed point.
    pub correspondences: Vec<usize>,
    /// Observed points, `c × 3`.
    pub points: Vec<f64>,
}

/// Parameters and model.
pub struct Ht {
    /// The 26 pose parameters.
    pub theta: Vec<f64>,
    /// Barycentric coordinates of each point in its triangle, `c × 2`; empty
    /// for the simple variant.
    pub us: Vec<f64>,
    /// The model.
    pub model: Model,
}

fn flat16(ms: Vec<Vec<Vec<f64>>>) -> Vec<f64> {
    ms.into_iter().flatten().flatten().collect()
}

impl From<Input> for Ht {
    fn from(i: Input) -> Ht {
        let m = i.data.model;
        Ht {
            theta: i.theta,
            us: i.us.concat(),
            model: Model {
                bones: m.parents.len(),
                parents: m.parents,
                base_relatives: flat16(m.base_relatives),
                inverse_base_absolutes: flat16(m.inverse_base_absolutes),
                base_positions: m.base_positions.concat(),
                weights: m.weights.concat(),
                triangles: m.triangles,
                is_mirrored: m.is_mirrored,
                correspondences: i.data.correspondences,
                points: i.data.points.concat(),
            },
        }
    }
}

/// Rotation (row-major 3 × 3) of Euler angles `(x, z, y)`: `R_z R_y R_x`.
#[differentiable(forward)]
pub fn euler_rotation(tx: f64, tz: f64, ty: f64) -> [f64; 9] {
    let (sx, cx) = (tx.sin(), tx.cos());
    let (sy, cy) = (ty.sin(), ty.cos());
    let (sz, cz) = (tz.sin(), tz.cos());
    [
        cz * cy,
        cz * sy * sx - sz * cx,
        cz * sy * cx + sz * sx,
        sz * cy,
        sz * sy * sx + cz * cx,
        sz * sy * cx - cz * sx,
        -sy,
        cy * sx,
        cy * cx,
    ]
}

/// The global rotation (row-major 3 × 3) of the angle-axis vector
/// `(x, y, z)` (Rodrigues), the identity below a small angle. The same for
/// every point: computed once per evaluation.
#[differentiable(forward)]
pub fn global_rotation(x: f64, y: f64, z: f64) -> [f64; 9] {
    let norm = (x * x + y * y + z * z).sqrt();
    if norm < 1e-4 {
        return [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0];
    }
    let (x, y, z) = (x / norm, y / norm, z / norm);
    let (s, c) = (norm.sin(), norm.cos());
    [
        x * x + (1.0 - x * x) * c,
        x * y * (1.0 - c) - z * s,
        x * z * (1.0 - c) + y * s,
        x * y * (1.0 - c) + z * s,
        y * y + (1.0 - y * y) * c,
        y * z * (1.0 - c) - x * s,
        x * z * (1.0 - c) - y * s,
        z * y * (1.0 - c) + x * s,
        z * z + (1.0 - z * z) * c,
    ]
}

/// The skinning transform of each bone (its posed absolute transform times
/// the inverse of its rest absolute transform), top three rows of each 4 × 4,
/// `bones × 12`.
#[differentiable(forward, wrt(theta))]
pub fn bone_transforms(theta: &[f64], model: &Model) -> Vec<f64> {
    let bones = model.bones;
    // joint angles (x, z, y) of bone b at pose[3b..3b + 3]: bones 0 and 1
    // (wrist) are fixed; of each finger's four bones the first bends in two
    // directions, the next two in one, the tip not at all
    let mut pose = vec![0.0; 3 * bones];
    let mut k = 6;
    for finger in 0..5 {
        let b = 2 + 4 * finger;
        pose[3 * b] = theta[k];
        pose[3 * b + 1] = theta[k + 1];
        pose[3 * (b + 1)] = theta[k + 2];
        pose[3 * (b + 2)] = theta[k + 3];
        k += 4;
    }
    let mut absolutes = vec![0.0; bones * 16];
    let mut out = vec![0.0; bones * 12];
    let mut relative = [0.0; 16];
    for b in 0..bones {
        // the posed relative transform: rest relative times the joint rotation
        let r = euler_rotation(pose[3 * b], pose[3 * b + 1], pose[3 * b + 2]);
        for i in 0..4 {
            for j in 0..4 {
                let mut s = 0.0;
                for k in 0..3 {
                    if j < 3 {
                        s += model.base_relatives[b * 16 + i * 4 + k] * r[k * 3 + j];
                    }
                }
                if j == 3 {
                    s = model.base_relatives[b * 16 + i * 4 + 3];
                }
                relative[i * 4 + j] = s;
            }
        }
        // chained to the parent's absolute transform
        let parent = model.parents[b];
        for i in 0..4 {
            for j in 0..4 {
                if parent < 0 {
                    absolutes[b * 16 + i * 4 + j] = relative[i * 4 + j];
                } else {
                    let p = parent as usize * 16;
                    let mut s = 0.0;
                    for k in 0..4 {
                        s += absolutes[p + i * 4 + k] * relative[k * 4 + j];
                    }
                    absolutes[b * 16 + i * 4 + j] = s;
                }
            }
        }
        for i in 0..3 {
            for j in 0..4 {
                let mut s = 0.0;
                for k in 0..4 {
                    s += absolutes[b * 16 + i * 4 + k]
                        * model.inverse_base_absolutes[b * 16 + k * 4 + j];
                }
                out[b * 12 + i * 4 + j] = s;
            }
        }
    }
    out
}

/// One corner's skinned rest position, before the global pose: the linear
/// blend `Σ_b w_b T_b v` over the bones that weigh on the vertex. Skinning is
/// sparse, as in a mesh that stores each vertex's bones: `transforms` holds
/// the `nb` transforms of the bones gathered for the point (`nb × 12`, top
/// three rows of each 4 × 4), `weights` this corner's weight for each (zero
/// where a bone does not weigh on it), `position` its rest position.
///
/// Coordinate `r` of the result reads only row `r` of each transform, so one
/// reverse sweep with the seed `(1, 1, 1)` gives the gradients of all three
/// coordinates at once, each in its own entries (the Jacobian's rows have
/// disjoint supports: row compression).
#[differentiable(wrt(transforms))]
pub fn skinned(transforms: &[f64], weights: &[f64], position: &[f64]) -> [f64; 3] {
    let mut p = [0.0; 3];
    for b in 0..weights.len() {
        let w = weights[b];
        if w != 0.0 {
            for r in 0..3 {
                let mut s = 0.0;
                for k in 0..4 {
                    s += transforms[b * 12 + r * 4 + k] * position[k];
                }
                p[r] += w * s;
            }
        }
    }
    p
}

/// The error of one observed point: the point `target` minus the point
/// `u₀ v₀ + u₁ v₁ + (1 - u₀ - u₁) v₂` of its triangle (the simple variant:
/// its vertex `v₀`, with `u = (1, 0)`), the corners' skinned positions `vᵢ`
/// given ([`skinned`]), then posed by the global `rotation` (row-major 3 × 3,
/// [`global_rotation`] of θ's first three) and `translation` (θ's next
/// three). Fixed-size arrays: the gradients are arrays too, nothing is
/// allocated per call.
#[differentiable(wrt(rotation, translation, corners, u))]
pub fn point_error(
    rotation: [f64; 9],
    translation: [f64; 3],
    corners: [f64; 9],
    u: [f64; 2],
    target: &[f64],
    mirrored: bool,
) -> [f64; 3] {
    // the blend of the corners (the global pose is affine, so it can follow
    // the blend)
    let a2 = 1.0 - u[0] - u[1];
    let mut p = [
        u[0] * corners[0] + u[1] * corners[3] + a2 * corners[6],
        u[0] * corners[1] + u[1] * corners[4] + a2 * corners[7],
        u[0] * corners[2] + u[1] * corners[5] + a2 * corners[8],
    ];
    if mirrored {
        p[0] = -p[0];
    }
    let r = rotation;
    [
        target[0] - (r[0] * p[0] + r[1] * p[1] + r[2] * p[2] + translation[0]),
        target[1] - (r[3] * p[0] + r[4] * p[1] + r[5] * p[2] + translation[1]),
        target[2] - (r[6] * p[0] + r[7] * p[1] + r[8] * p[2] + translation[2]),
    ]
}

/// What [`skinned`] reads of the model for one point, gathered: the bones
/// that weigh on any of its corners, their transforms, each corner's weights
/// for them (`corners × nb`) and the corners' rest positions
/// (`corners × 4`). Reused from point to point (no allocation once grown).
#[derive(Default)]
struct Gathered {
    bones: Vec<usize>,
    transforms: Vec<f64>,
    weights: Vec<f64>,
    positions: Vec<f64>,
}

impl Gathered {
    /// Each corner's weights for the gathered bones and rest position, the
    /// arguments of [`skinned`] after `transforms`.
    fn corners(&self) -> impl Iterator<Item = (&[f64], &[f64])> {
        let nb = self.bones.len();
        self.positions
            .chunks_exact(4)
            .enumerate()
            .map(move |(c, position)| (&self.weights[c * nb..(c + 1) * nb], position))
    }

    /// Gathers point `i` of `model` from the bone transforms `t`.
    fn point(&mut self, model: &Model, t: &[f64], simple: bool, i: usize) {
        let c = model.correspondences[i];
        let corners: &[usize] = if simple {
            core::slice::from_ref(&model.correspondences[i])
        } else {
            &model.triangles[c]
        };
        self.bones.clear();
        for b in 0..model.bones {
            if corners
                .iter()
                .any(|&v| model.weights[v * model.bones + b] != 0.0)
            {
                self.bones.push(b);
            }
        }
        self.transforms.clear();
        for &b in &self.bones {
            self.transforms.extend_from_slice(&t[b * 12..b * 12 + 12]);
        }
        self.weights.clear();
        self.positions.clear();
        for &v in corners {
            for &b in &self.bones {
                self.weights.push(model.weights[v * model.bones + b]);
            }
            self.positions
                .extend_from_slice(&model.base_positions[v * 4..v * 4 + 4]);
        }
    }
}

/// A row-major matrix in one buffer, written out as a list of rows.
pub struct Rows {
    /// Entries per row.
    pub width: usize,
    /// The entries, row by row.
    pub data: Vec<f64>,
}

impl Rows {
    /// The rows.
    pub fn rows(&self) -> core::slice::ChunksExact<'_, f64> {
        self.data.chunks_exact(self.width)
    }
}

impl Serialize for Rows {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.data.len() / self.width))?;
        for row in self.rows() {
            seq.serialize_element(row)?;
        }
        seq.end()
    }
}

impl Ht {
    /// Point `i`'s barycentric coordinates; `(1, 0)` (its vertex) for the
    /// simple variant.
    fn u(&self, i: usize) -> [f64; 2] {
        if self.us.is_empty() {
            [1.0, 0.0]
        } else {
            [self.us[2 * i], self.us[2 * i + 1]]
        }
    }

    /// θ's global rotation matrix and translation.
    fn pose(&self) -> ([f64; 9], [f64; 3]) {
        let th = &self.theta;
        (global_rotation(th[0], th[1], th[2]), [th[3], th[4], th[5]])
    }

    /// The `3c` errors.
    pub fn objective(&self) -> Vec<f64> {
        let m = &self.model;
        let t = bone_transforms(&self.theta, m);
        let mut g = Gathered::default();
        let (rotation, translation) = self.pose();
        let mut err = Vec::with_capacity(3 * m.correspondences.len());
        for i in 0..m.correspondences.len() {
            g.point(m, &t, self.us.is_empty(), i);
            let mut corners = [0.0; 9];
            for (c, (weights, position)) in g.corners().enumerate() {
                corners[c * 3..c * 3 + 3].copy_from_slice(&skinned(
                    &g.transforms,
                    weights,
                    position,
                ));
            }
            err.extend(point_error(
                rotation,
                translation,
                corners,
                self.u(i),
                &m.points[3 * i..3 * i + 3],
                m.is_mirrored,
            ));
        }
        err
    }

    /// The Jacobian of [`Ht::objective`], one row per error: `∂/∂u` (complicated
    /// variant only), then `∂/∂θ`.
    pub fn jacobian(&self) -> Rows {
        let nt = self.theta.len();
        let t = bone_transforms(&self.theta, &self.model);
        // ∂ transforms / ∂θ (bones·12 rows, 26 columns): one forward sweep per
        // column, not one reverse sweep per row
        let mut dt = vec![0.0; t.len() * nt];
        let mut dir = vec![0.0; nt];
        for k in 0..nt {
            dir[k] = 1.0;
            let (_, col) = bone_transforms_tangent(&self.theta, &self.model, dir.clone());
            dir[k] = 0.0;
            for (e, v) in col.iter().enumerate() {
                dt[e * nt + k] = *v;
            }
        }
        // Its non-zero entries, row by row (compressed sparse rows): a bone's
        // transform depends on its finger's four angles only, not all 26.
        let mut starts = Vec::with_capacity(t.len() + 1);
        let mut entries = Vec::new();
        for e in 0..t.len() {
            starts.push(entries.len());
            for k in 0..nt {
                if dt[e * nt + k] != 0.0 {
                    entries.push((k, dt[e * nt + k]));
                }
            }
        }
        starts.push(entries.len());
        // The global rotation and its 9 × 3 Jacobian in θ[0..3] (three
        // forward sweeps).
        let (rotation, translation) = self.pose();
        let th = &self.theta;
        let mut d_rotation = [[0.0; 3]; 9];
        for k in 0..3 {
            let mut dir = [0.0; 3];
            dir[k] = 1.0;
            let (_, col) = global_rotation_tangent(th[0], th[1], th[2], dir[0], dir[1], dir[2]);
            for e in 0..9 {
                d_rotation[e][k] = col[e];
            }
        }
        let m = &self.model;
        let cols = if self.us.is_empty() { 0 } else { 2 };
        let mut g = Gathered::default();
        let width = cols + nt;
        let mut data = vec![0.0; 3 * m.correspondences.len() * width];
        let mut rows = data.chunks_exact_mut(width);
        let mut d_skinned = Vec::with_capacity(3);
        let mut d_row_t = Vec::new();
        for i in 0..m.correspondences.len() {
            g.point(m, &t, self.us.is_empty(), i);
            let nb = g.bones.len();
            // each corner's skinned position and its gradient in the
            // gathered transforms: one reverse sweep per corner (row
            // compression, see `skinned`)
            let mut corners = [0.0; 9];
            d_skinned.clear();
            for (c, (weights, position)) in g.corners().enumerate() {
                let (p, d_t) = skinned_adjoint(&g.transforms, weights, position, [1.0; 3]);
                corners[c * 3..c * 3 + 3].copy_from_slice(&p);
                d_skinned.push(d_t);
            }
            for j in 0..3 {
                let mut seed = [0.0; 3];
                seed[j] = 1.0;
                let (_, (d_r, d_translation, d_corners, d_u)) = point_error_adjoint(
                    rotation,
                    translation,
                    corners,
                    self.u(i),
                    &m.points[3 * i..3 * i + 3],
                    m.is_mirrored,
                    seed,
                );
                let Some(row) = rows.next() else {
                    unreachable!("three rows per point")
                };
                row[..cols].copy_from_slice(&d_u[..cols]);
                row[cols + 3..cols + 6].copy_from_slice(&d_translation);
                // chain rule at the rotation, the corners and the transforms:
                // row += ∂err/∂R · ∂R/∂θ + Σ ∂err/∂corner · ∂corner/∂T · ∂T/∂θ,
                // over the gathered
                // bones' entries (entry (s, r, k) of a corner's gradient is
                // that of its coordinate r)
                d_row_t.clear();
                d_row_t.resize(nb * 12, 0.0);
                for (c, d_t) in d_skinned.iter().enumerate() {
                    let dc = &d_corners[c * 3..c * 3 + 3];
                    for (d, t) in d_row_t.chunks_exact_mut(12).zip(d_t.chunks_exact(12)) {
                        for r in 0..3 {
                            for k in r * 4..r * 4 + 4 {
                                d[k] += dc[r] * t[k];
                            }
                        }
                    }
                }
                let row_theta = &mut row[cols..];
                for (d, dr) in d_r.iter().zip(&d_rotation) {
                    for k in 0..3 {
                        row_theta[k] += d * dr[k];
                    }
                }
                for (s, &b) in g.bones.iter().enumerate() {
                    for (l, &d) in d_row_t[s * 12..s * 12 + 12].iter().enumerate() {
                        let e = b * 12 + l;
                        for &(k, v) in &entries[starts[e]..starts[e + 1]] {
                            row_theta[k] += d * v;
                        }
                    }
                }
            }
        }
        Rows { width, data }
    }
}

/// Evaluates `objective` or `jacobian`.
pub fn evaluate(function: &str, input: Value) -> Result<Evaluated, String> {
    let ht: Ht = parse::<Input>(input.clone())?.into();
    match function {
        "objective" => timed(&input, ht, Ht::objective),
        "jacobian" => timed(&input, ht, Ht::jacobian),
        _ => Err(super::unknown("ht", function)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, fd_gradient, rand_vec};

    /// A random 22-bone chain with 6 vertices and 4 observed points.
    fn tiny(complicated: bool) -> Ht {
        let bones = 22;
        let near_identity = |seed| -> Vec<f64> {
            let r = rand_vec(seed, bones * 16, 0.3);
            (0..bones * 16)
                .map(|e| {
                    let (i, j) = (e % 16 / 4, e % 4);
                    match (i, j) {
                        (3, _) => (j == 3) as u8 as f64,
                        _ => r[e] + (i == j) as u8 as f64,
                    }
                })
                .collect()
        };
        let verts = 6;
        let weights: Vec<f64> = rand_vec(3, verts * bones, 1.0)
            .iter()
            .map(|w| w.max(0.0))
            .collect();
        let mut base_positions = rand_vec(4, verts * 4, 1.0);
        for v in 0..verts {
            base_positions[v * 4 + 3] = 1.0;
        }
        let c = 4;
        Ht {
            theta: rand_vec(5, 26, 0.7),
            us: if complicated {
                rand_vec(6, 2 * c, 0.5)
            } else {
                Vec::new()
            },
            model: Model {
                bones,
                parents: (0..bones as i64).map(|b| b - 1).collect(),
                base_relatives: near_identity(1),
                inverse_base_absolutes: near_identity(2),
                base_positions,
                weights,
                triangles: vec![[0, 1, 2], [3, 4, 5], [5, 0, 2]],
                is_mirrored: complicated,
                correspondences: if complicated {
                    vec![0, 2, 1, 2]
                } else {
                    vec![0, 5, 3, 1]
                },
                points: rand_vec(7, 3 * c, 1.0),
            },
        }
    }

    #[test]
    fn jacobian_rows_match_finite_differences() {
        for complicated in [false, true] {
            let ht = tiny(complicated);
            let jac = ht.jacobian();
            let cols = if complicated { 2 } else { 0 };
            for (row, got) in jac.rows().enumerate() {
                let (i, j) = (row / 3, row % 3);
                let f_theta = |t: &[f64]| {
                    let h = Ht {
                        theta: t.to_vec(),
                        us: ht.us.clone(),
                        model: tiny(complicated).model,
                    };
                    h.objective()[row]
                };
                let mut want = Vec::new();
                if complicated {
                    let f_u = |u: &[f64]| {
                        let mut us = ht.us.clone();
                        us[2 * i..2 * i + 2].copy_from_slice(u);
                        let h = Ht {
                            theta: ht.theta.clone(),
                            us,
                            model: tiny(complicated).model,
                        };
                        h.objective()[row]
                    };
                    want.extend(fd_gradient(f_u, &ht.us[2 * i..2 * i + 2]));
                }
                want.extend(fd_gradient(f_theta, &ht.theta));
                assert_eq!(got.len(), cols + 26);
                assert_close(
                    got,
                    &want,
                    &format!("complicated={complicated} point {i} coordinate {j}"),
                );
            }
        }
    }
}
