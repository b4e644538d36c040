//! Data sets and mini-batches.

use super::Rng;
use crate::tensor::Tensor;

/// A labelled data set: features of shape `[n, ...]` (one row per example)
/// and `n` class labels.
#[derive(Clone, Debug)]
pub struct Dataset {
    features: Tensor,
    labels: Vec<usize>,
}

impl Dataset {
    /// A data set of the rows of `features` with `labels`.
    ///
    /// # Panics
    /// When `features` is a scalar or its row count is not `labels.len()`.
    #[track_caller]
    pub fn new(features: Tensor, labels: Vec<usize>) -> Dataset {
        match features.shape().first() {
            Some(&n) if n == labels.len() => {}
            _ => panic!(
                "Dataset::new: features of shape {:?} do not have one row for each of {} labels",
                features.shape(),
                labels.len()
            ),
        }
        Dataset { features, labels }
    }

    /// The features, `[n, ...]`.
    pub fn features(&self) -> &Tensor {
        &self.features
    }

    /// The labels, one per row.
    pub fn labels(&self) -> &[usize] {
        &self.labels
    }

    /// The number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no examples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The examples at `indices`, in that order, as a batch.
    #[track_caller]
    pub fn select(&self, indices: &[usize]) -> (Tensor, Vec<usize>) {
        let x = self.features.select_rows(indices);
        let y = indices.iter().map(|&i| self.labels[i]).collect();
        (x, y)
    }

    /// The examples `0..split` and `split..n` as two data sets (a
    /// train/test split; shuffle first with [`select`](Dataset::select) and
    /// [`Rng::permutation`] for a random one).
    ///
    /// # Panics
    /// When `split > n`.
    #[track_caller]
    pub fn split_at(&self, split: usize) -> (Dataset, Dataset) {
        assert!(
            split <= self.len(),
            "Dataset::split_at: {split} is past the {} examples",
            self.len()
        );
        let (a, b): (Vec<usize>, Vec<usize>) =
            ((0..split).collect(), (split..self.len()).collect());
        let (xa, ya) = self.select(&a);
        let (xb, yb) = self.select(&b);
        (Dataset::new(xa, ya), Dataset::new(xb, yb))
    }

    /// Mini-batches of `batch_size` examples in order; the last one may be
    /// smaller (see [`Batches::drop_last`]).
    ///
    /// # Panics
    /// When `batch_size == 0`.
    #[track_caller]
    pub fn batches(&self, batch_size: usize) -> Batches<'_> {
        Batches::new(self, (0..self.len()).collect(), batch_size)
    }

    /// Mini-batches in an order drawn from `rng` (so successive epochs drawn
    /// from one generator differ, and a seed fixes them all).
    #[track_caller]
    pub fn shuffled(&self, batch_size: usize, rng: &mut Rng) -> Batches<'_> {
        Batches::new(self, rng.permutation(self.len()), batch_size)
    }

    /// Mini-batches of epoch `epoch` in an order that depends only on `seed`
    /// and `epoch`: a run resumed at epoch `k` sees the same batches as an
    /// uninterrupted one.
    ///
    /// ```
    /// use tapeless_runtime::nn::Dataset;
    /// use tapeless_runtime::tensor::Tensor;
    /// let data = Dataset::new(Tensor::from_vec((0..10).map(|i| i as f32).collect(), &[10, 1]), (0..10).collect());
    /// let first: Vec<Vec<usize>> = data.epoch(4, 7, 0).map(|(_, y)| y).collect();
    /// assert_eq!(first.len(), 3); // 4 + 4 + 2
    /// assert_eq!(first, data.epoch(4, 7, 0).map(|(_, y)| y).collect::<Vec<_>>());
    /// assert_ne!(first, data.epoch(4, 7, 1).map(|(_, y)| y).collect::<Vec<_>>());
    /// ```
    #[track_caller]
    pub fn epoch(&self, batch_size: usize, seed: u64, epoch: u64) -> Batches<'_> {
        let mut rng = Rng::seed_from(seed ^ epoch.wrapping_mul(0xD1B5_4A32_D192_ED03));
        self.shuffled(batch_size, &mut rng)
    }
}

/// An iterator over the mini-batches of a [`Dataset`]: `(features, labels)`
/// with features of shape `[batch, ...]` (copied rows, via
/// [`Tensor::select_rows`]).
#[derive(Clone, Debug)]
pub struct Batches<'a> {
    data: &'a Dataset,
    order: Vec<usize>,
    pos: usize,
    batch_size: usize,
    drop_last: bool,
}

impl<'a> Batches<'a> {
    #[track_caller]
    fn new(data: &'a Dataset, order: Vec<usize>, batch_size: usize) -> Batches<'a> {
        assert!(batch_size > 0, "batches: the batch size must be at least 1");
        Batches {
            data,
            order,
            pos: 0,
            batch_size,
            drop_last: false,
        }
    }

    /// Leaves out a last batch smaller than the batch size.
    pub fn drop_last(mut self) -> Batches<'a> {
        self.drop_last = true;
        self
    }

    /// The order in which the examples are visited.
    pub fn order(&self) -> &[usize] {
        &self.order
    }
}

impl Iterator for Batches<'_> {
    type Item = (Tensor, Vec<usize>);

    fn next(&mut self) -> Option<(Tensor, Vec<usize>)> {
        let left = self.order.len() - self.pos;
        if left == 0 || (self.drop_last && left < self.batch_size) {
            return None;
        }
        let end = self.pos + left.min(self.batch_size);
        let batch = self.data.select(&self.order[self.pos..end]);
        self.pos = end;
        Some(batch)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.order.len() - self.pos;
        let n = if self.drop_last {
            left / self.batch_size
        } else {
            left.div_ceil(self.batch_size)
        };
        (n, Some(n))
    }
}

impl ExactSizeIterator for Batches<'_> {}
