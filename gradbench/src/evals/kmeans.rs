//! `kmeans`: the k-means cost `Σ_i min_j |C_j - P_i|²` (`cost`), and the
//! Newton direction `J H⁻¹` (`dir`) with `J` its gradient with respect to the
//! centroids `C` and `H` its Hessian, which is diagonal.
//!
//! `dir` is one `_hvp` along the all-ones vector: it returns the gradient
//! and `H 1`, which for a diagonal `H` is its diagonal (as GradBench's Enzyme
//! tool seeds its forward-over-reverse sweep). It differentiates
//! [`cost_assigned`], the same function written as the distance to the
//! closest centroid with the choice of that centroid under `stop_gradient`:
//! `cost_hvp` (through `min`) gives the same numbers, 27–66× slower, as its
//! sweeps record all `k` distances per point where one matters.

use crate::protocol::{parse, timed, Evaluated};
use serde::Deserialize;
use serde_json::Value;
use tapeless::differentiable;

#[derive(Deserialize)]
struct Input {
    points: Vec<Vec<f64>>,
    centroids: Vec<Vec<f64>>,
}

/// Row-major flattened points (`n × d`) and centroids (`k × d`).
pub struct Prepared {
    points: Vec<f64>,
    centroids: Vec<f64>,
    d: usize,
}

/// The sum over the points of the squared distance to the closest centroid.
/// `points` is `n × d` and `centroids` `k × d`, row-major.
#[differentiable(hessian, wrt(centroids))]
pub fn cost(points: &[f64], centroids: &[f64], d: usize) -> f64 {
    let n = points.len() / d;
    let k = centroids.len() / d;
    let mut total = 0.0;
    for i in 0..n {
        let mut closest = f64::INFINITY;
        for j in 0..k {
            let mut dist = 0.0;
            for l in 0..d {
                let diff = points[i * d + l] - centroids[j * d + l];
                dist += diff * diff;
            }
            closest = closest.min(dist);
        }
        total += closest;
    }
    total
}

/// The index of the centroid closest to point `i` (the first on ties, like
/// `min`): a discrete choice, through which no derivative flows.
pub fn closest(points: &[f64], centroids: &[f64], i: usize, d: usize) -> usize {
    let point = &points[i * d..(i + 1) * d];
    let mut best = 0;
    let mut closest = f64::INFINITY;
    for (j, c) in centroids.chunks_exact(d).enumerate() {
        let dist: f64 = point.iter().zip(c).map(|(p, c)| (p - c) * (p - c)).sum();
        if dist < closest {
            closest = dist;
            best = j;
        }
    }
    best
}

/// [`cost`] written as the squared distance of each point to its closest
/// centroid, the choice made by [`closest`] under `stop_gradient`: the same
/// function, whose derivatives follow only the chosen centroid.
#[differentiable(hessian, wrt(centroids))]
pub fn cost_assigned(points: &[f64], centroids: &[f64], d: usize) -> f64 {
    let n = points.len() / d;
    let mut total = 0.0;
    for i in 0..n {
        let j = closest(points, tapeless::stop_gradient(centroids), i, d);
        for l in 0..d {
            let diff = points[i * d + l] - centroids[j * d + l];
            total += diff * diff;
        }
    }
    total
}

/// `J H⁻¹`, `k × d` row-major: the gradient divided element-wise by the
/// Hessian's diagonal.
pub fn dir(points: &[f64], centroids: &[f64], d: usize) -> Vec<f64> {
    let ones = vec![1.0; centroids.len()];
    let (_, grad, h_diag) = cost_assigned_hvp(points, centroids, d, ones);
    grad.iter().zip(&h_diag).map(|(g, h)| g / h).collect()
}

/// Evaluates `cost` or `dir`.
pub fn evaluate(function: &str, input: Value) -> Result<Evaluated, String> {
    let i: Input = parse(input.clone())?;
    let d = i.points.first().map_or(0, Vec::len);
    let p = Prepared {
        points: i.points.concat(),
        centroids: i.centroids.concat(),
        d,
    };
    match function {
        "cost" => timed(&input, p, |p| cost(&p.points, &p.centroids, p.d)),
        "dir" => timed(&input, p, |p| {
            let dir = dir(&p.points, &p.centroids, p.d);
            dir.chunks(p.d).map(<[f64]>::to_vec).collect::<Vec<_>>()
        }),
        _ => Err(super::unknown("kmeans", function)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, fd_gradient, rand_vec};

    #[test]
    fn gradient_hessian_diagonal_and_direction() {
        let (n, k, d) = (12, 3, 2);
        let points: Vec<f64> = rand_vec(7, n * d, 1.0);
        // Each centroid is one of the points, so no cluster is empty.
        let centroids: Vec<f64> = points[(n - k) * d..].to_vec();
        let f = |c: &[f64]| cost(&points, c, d);
        let (v, g, h) = cost_hvp(&points, &centroids, d, vec![1.0; k * d]);
        assert_eq!(v, f(&centroids));
        assert_close(&g, &fd_gradient(f, &centroids), "gradient");
        // The Hessian is diagonal: twice the cluster sizes; the direction is
        // the centroid minus its cluster's mean.
        let mut size = vec![0.0; k];
        let mut sum = vec![0.0; k * d];
        for i in 0..n {
            let dist = |j: usize| -> f64 {
                (0..d)
                    .map(|l| (points[i * d + l] - centroids[j * d + l]).powi(2))
                    .sum()
            };
            let j = (0..k).min_by(|&a, &b| dist(a).total_cmp(&dist(b))).unwrap();
            size[j] += 1.0;
            for l in 0..d {
                sum[j * d + l] += points[i * d + l];
            }
        }
        let want_h: Vec<f64> = (0..k * d).map(|x| 2.0 * size[x / d]).collect();
        assert_close(&h, &want_h, "Hessian diagonal");
        let (_, _, dense) = cost_hessian(&points, &centroids, d);
        for a in 0..k * d {
            for b in 0..k * d {
                let want = if a == b { want_h[a] } else { 0.0 };
                assert_close(&[dense.get(a, b)], &[want], "dense Hessian");
            }
        }
        // The `min` formulation has the same value and derivatives.
        let (v2, g2, h2) = cost_assigned_hvp(&points, &centroids, d, vec![1.0; k * d]);
        assert_close(&[v2], &[v], "value of cost_assigned");
        assert_close(&g2, &g, "gradient of cost_assigned");
        assert_close(&h2, &h, "Hessian diagonal of cost_assigned");
        let want_dir: Vec<f64> = (0..k * d)
            .map(|x| centroids[x] - sum[x] / size[x / d])
            .collect();
        assert_close(&dir(&points, &centroids, d), &want_dir, "direction");
    }
}
