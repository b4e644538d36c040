//! Tangent spaces: what a gradient of a value is, and how gradients add up.
//!
//! Two traits carry the whole calculus of the generated code:
//!
//! * [`Differentiable`] is implemented by every type that can be an active
//!   input or output of a `#[differentiable]` function. It names the type of
//!   its gradient (`Tangent`) and builds a zero gradient of the right shape.
//! * [`Tangent`] is implemented by gradient types. It has a *shapeless* zero
//!   (an additive identity that needs no value to build, so generated code can
//!   declare an adjoint before it knows the shape of the value) and an in-place
//!   accumulation.
//!
//! A `Vec` tangent uses the empty vector as its shapeless zero, the way Swift's
//! `Array.TangentVector` does: a shorter vector stands for one padded with zeros,
//! and accumulation grows the shorter side. Gradients handed to users are always
//! full length, because the generated code starts parameter gradients from
//! [`Differentiable::zero_tangent`].

/// A type whose values can be differentiated: the inputs and outputs of
/// `#[differentiable]` functions.
///
/// `f32` and `f64` are their own tangents; `[T]` and `Vec<T>` have `Vec<T::Tangent>`,
/// `[T; N]` has `[T::Tangent; N]`, tuples are element-wise.
pub trait Differentiable {
    /// The type of a gradient (cotangent) of a value of this type.
    type Tangent: Tangent;
    /// A zero gradient with the shape of `self` (a `Vec` of `self.len()` zeros, ...).
    fn zero_tangent(&self) -> Self::Tangent;

    /// `t` with the full shape of `self`: shapeless zeros (an empty `Vec`, a
    /// shapeless zero tensor) and shorter `Vec`s become explicit zeros. The
    /// generated code accumulates gradients from shapeless zeros (no
    /// allocation, no extra pass) and completes parameter gradients once, at
    /// the end.
    fn complete_tangent(&self, t: Self::Tangent) -> Self::Tangent {
        t
    }

    /// `t` as a forward-mode tangent of `self`: parts that are not
    /// differentiated (`#[no_grad]` fields, which gradients carry as copies of
    /// the value) set to zero. Forward-mode code applies it to the tangents it
    /// is given, so a gradient can be passed as a direction.
    fn forward_tangent(&self, t: Self::Tangent) -> Self::Tangent {
        t
    }
}

/// A gradient type: a vector space with a zero that needs no shape.
pub trait Tangent: Sized {
    /// The additive identity. For shaped types this may be an empty value that
    /// acts as zero under [`Tangent::accumulate`].
    fn zero() -> Self;
    /// `self += other`.
    fn accumulate(&mut self, other: Self);
}

/// Gradient containers that can be indexed, so `x[i]` can send its gradient to
/// the `i`-th element of `x`'s gradient.
pub trait IndexTangent {
    /// The tangent of one element.
    type Elem: Tangent;
    /// The `i`-th element's tangent, growing a shorter (partly zero) tangent as needed.
    fn elem_mut(&mut self, i: usize) -> &mut Self::Elem;
    /// The `i`-th element's tangent of a tangent that already has its value's
    /// shape (never grows it). Generated code uses it for containers whose
    /// length the function never changes; it defaults to [`Self::elem_mut`].
    #[inline(always)]
    fn elem_in(&mut self, i: usize) -> &mut Self::Elem {
        self.elem_mut(i)
    }
}

/// An index past the end of a tangent that has its value's shape: the value
/// was indexed there too, so this is a bug in tapeless.
#[cold]
#[inline(never)]
fn shaped_index_bug(i: usize, len: usize) -> ! {
    panic!(
        "tapeless: index {i} is out of range of an adjoint shaped like its value \
         (length {len}); please report this as a bug"
    )
}

macro_rules! float_tangent {
    ($($t:ty),*) => {$(
        impl Differentiable for $t {
            type Tangent = $t;
            #[inline(always)]
            fn zero_tangent(&self) -> $t {
                0.0
            }
            /// A gradient that nothing reached is the `-0.0` it started
            /// from (see `zero`): `+ 0.0` hands it out as `0.0`.
            #[inline(always)]
            fn complete_tangent(&self, t: $t) -> $t {
                t + 0.0
            }
        }
        impl Tangent for $t {
            /// `-0.0`, IEEE 754's additive identity: `-0.0 + x == x` for
            /// every `x` (`+0.0 + -0.0` is `+0.0`), so the compiler may drop
            /// the addition of an adjoint that starts from zero (`take` then
            /// `acc` in a loop: `d = zero + g` becomes `d = g`), which it may
            /// not do for `+0.0`. In least squares over 1000 points this
            /// removed a dependent addition per point (1.36 to 1.19 µs).
            #[inline(always)]
            fn zero() -> $t {
                -0.0
            }
            #[inline(always)]
            fn accumulate(&mut self, other: $t) {
                *self += other;
            }
        }
    )*};
}
float_tangent!(f32, f64);

/// Integers carry no derivative: their tangent is always `0` and accumulating
/// into it does nothing. This lets an integer field of a differentiated struct
/// (`self.n as f64`) take part in generated code with a zero derivative.
macro_rules! int_tangent {
    ($($t:ty),*) => {$(
        impl Differentiable for $t {
            type Tangent = $t;
            #[inline(always)]
            fn zero_tangent(&self) -> $t {
                0
            }
        }
        impl Tangent for $t {
            #[inline(always)]
            fn zero() -> $t {
                0
            }
            #[inline(always)]
            fn accumulate(&mut self, _other: $t) {}
        }
    )*};
}
int_tangent!(i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize);

/// Values that carry no derivative at all (`bool`, `char`, strings): their
/// tangent is `()`. Forward mode passes a tangent for every parameter, so a
/// `bool` parameter needs one too.
macro_rules! no_tangent {
    ($($t:ty),*) => {$(
        impl Differentiable for $t {
            type Tangent = ();
            #[inline(always)]
            fn zero_tangent(&self) {}
        }
    )*};
}
no_tangent!(bool, char, str, String);

/// The tangent of something with no derivative: `()` carries no information.
impl Tangent for () {
    #[inline(always)]
    fn zero() {}
    #[inline(always)]
    fn accumulate(&mut self, _other: ()) {}
}

impl<T: Differentiable + ?Sized> Differentiable for &T {
    type Tangent = T::Tangent;
    #[inline(always)]
    fn zero_tangent(&self) -> T::Tangent {
        (**self).zero_tangent()
    }
    #[inline(always)]
    fn complete_tangent(&self, t: T::Tangent) -> T::Tangent {
        (**self).complete_tangent(t)
    }
    #[inline(always)]
    fn forward_tangent(&self, t: T::Tangent) -> T::Tangent {
        (**self).forward_tangent(t)
    }
}

impl<T: Differentiable + ?Sized> Differentiable for &mut T {
    type Tangent = T::Tangent;
    #[inline(always)]
    fn zero_tangent(&self) -> T::Tangent {
        (**self).zero_tangent()
    }
    #[inline(always)]
    fn complete_tangent(&self, t: T::Tangent) -> T::Tangent {
        (**self).complete_tangent(t)
    }
    #[inline(always)]
    fn forward_tangent(&self, t: T::Tangent) -> T::Tangent {
        (**self).forward_tangent(t)
    }
}

impl<T: Differentiable> Differentiable for [T] {
    type Tangent = Vec<T::Tangent>;
    fn zero_tangent(&self) -> Vec<T::Tangent> {
        self.iter().map(T::zero_tangent).collect()
    }
    fn complete_tangent(&self, t: Vec<T::Tangent>) -> Vec<T::Tangent> {
        // In place: a gradient that already has the value's shape (the
        // adjoint of a slice the function only indexes) keeps its buffer.
        let mut t = t;
        t.truncate(self.len());
        for (e, x) in t.iter_mut().zip(self) {
            let g = core::mem::replace(e, T::Tangent::zero());
            *e = x.complete_tangent(g);
        }
        let n = t.len();
        t.extend(self[n..].iter().map(T::zero_tangent));
        t
    }
}

impl<T: Differentiable> Differentiable for Vec<T> {
    type Tangent = Vec<T::Tangent>;
    fn zero_tangent(&self) -> Vec<T::Tangent> {
        self.as_slice().zero_tangent()
    }
    fn complete_tangent(&self, t: Vec<T::Tangent>) -> Vec<T::Tangent> {
        self.as_slice().complete_tangent(t)
    }
}

impl<T: Differentiable, const N: usize> Differentiable for [T; N] {
    type Tangent = [T::Tangent; N];
    fn zero_tangent(&self) -> [T::Tangent; N] {
        core::array::from_fn(|i| self[i].zero_tangent())
    }
    fn complete_tangent(&self, t: [T::Tangent; N]) -> [T::Tangent; N] {
        let mut i = 0;
        t.map(|e| {
            i += 1;
            self[i - 1].complete_tangent(e)
        })
    }
}

impl<T: Tangent> Tangent for Vec<T> {
    #[inline]
    fn zero() -> Self {
        Vec::new()
    }
    fn accumulate(&mut self, other: Self) {
        if self.is_empty() {
            *self = other;
            return;
        }
        let mut other = other.into_iter();
        for (a, b) in self.iter_mut().zip(other.by_ref()) {
            a.accumulate(b);
        }
        self.extend(other);
    }
}

impl<T: Tangent> IndexTangent for Vec<T> {
    type Elem = T;
    #[inline]
    fn elem_mut(&mut self, i: usize) -> &mut T {
        if i >= self.len() {
            self.resize_with(i + 1, T::zero);
        }
        &mut self[i]
    }
    #[inline(always)]
    fn elem_in(&mut self, i: usize) -> &mut T {
        let len = self.len();
        match self.get_mut(i) {
            Some(e) => e,
            None => shaped_index_bug(i, len),
        }
    }
}

impl<T: Tangent, const N: usize> Tangent for [T; N] {
    #[inline]
    fn zero() -> Self {
        core::array::from_fn(|_| T::zero())
    }
    #[inline]
    fn accumulate(&mut self, other: Self) {
        for (a, b) in self.iter_mut().zip(other) {
            a.accumulate(b);
        }
    }
}

impl<T: Tangent, const N: usize> IndexTangent for [T; N] {
    type Elem = T;
    #[inline(always)]
    fn elem_mut(&mut self, i: usize) -> &mut T {
        &mut self[i]
    }
}

macro_rules! tuple_tangent {
    ($(($($name:ident $idx:tt),+))*) => {$(
        impl<$($name: Differentiable),+> Differentiable for ($($name,)+) {
            type Tangent = ($($name::Tangent,)+);
            #[inline]
            fn zero_tangent(&self) -> Self::Tangent {
                ($(self.$idx.zero_tangent(),)+)
            }
            #[inline]
            fn complete_tangent(&self, t: Self::Tangent) -> Self::Tangent {
                ($(self.$idx.complete_tangent(t.$idx),)+)
            }
        }
        impl<$($name: Tangent),+> Tangent for ($($name,)+) {
            #[inline]
            fn zero() -> Self {
                ($($name::zero(),)+)
            }
            #[inline]
            fn accumulate(&mut self, other: Self) {
                $(self.$idx.accumulate(other.$idx);)+
            }
        }
    )*};
}
tuple_tangent! {
    (A 0)
    (A 0, B 1)
    (A 0, B 1, C 2)
    (A 0, B 1, C 2, D 3)
    (A 0, B 1, C 2, D 3, E 4)
    (A 0, B 1, C 2, D 3, E 4, F 5)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vec_zero_is_shapeless_and_grows() {
        let mut g: Vec<f64> = Tangent::zero();
        g.accumulate(vec![1.0, 2.0]);
        assert_eq!(g, vec![1.0, 2.0]);
        g.accumulate(vec![0.5]);
        assert_eq!(g, vec![1.5, 2.0]);
        g.accumulate(vec![0.0, 0.0, 3.0]);
        assert_eq!(g, vec![1.5, 2.0, 3.0]);
        *g.elem_mut(5) += 1.0;
        assert_eq!(g, vec![1.5, 2.0, 3.0, 0.0, 0.0, 1.0]);
    }

    #[test]
    fn zero_tangent_has_the_shape_of_the_value() {
        assert_eq!([1.0f32, 2.0].zero_tangent(), [0.0, 0.0]);
        assert_eq!(
            vec![vec![1.0f64; 2]; 3].zero_tangent(),
            vec![vec![0.0; 2]; 3]
        );
        assert_eq!((1.0f64, [2.0f32; 1]).zero_tangent(), (0.0, [0.0]));
        let s: &[f64] = &[1.0, 2.0, 3.0];
        assert_eq!(s.zero_tangent().len(), 3);
    }

    #[test]
    fn tuples_and_arrays_accumulate_elementwise() {
        let mut a = (1.0f64, [1.0f64, 2.0]);
        a.accumulate((2.0, [3.0, 4.0]));
        assert_eq!(a, (3.0, [4.0, 6.0]));
    }
}
