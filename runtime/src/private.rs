//! Support for the code `#[differentiable]` writes. Not a public API: names and
//! signatures here change with the macro, which always matches this crate's
//! version exactly.
//!
//! Generated code never calls a method on a value whose type rustc may not know
//! yet; it calls the free functions below, so inference flows from the primal
//! code the user wrote.

#![doc(hidden)]

pub use crate::rules;
/// Forward mode: tangent functions, their pullbacks, Jacobian helpers.
pub mod fwd {
    pub use crate::forward::*;
    pub use crate::fwd_args::*;
}
use crate::tangent::{Differentiable, IndexTangent, Tangent};
use core::marker::PhantomData;

/// Strips references: `prim(&x)` is `&f64` for `x: f64`, `x: &f64` or `x: &&f64`.
pub trait Prim {
    /// The value type behind any number of references.
    type Target: ?Sized;
    /// The value behind the references.
    fn prim(&self) -> &Self::Target;
}

impl<T: Prim + ?Sized> Prim for &T {
    type Target = T::Target;
    #[inline(always)]
    fn prim(&self) -> &T::Target {
        (**self).prim()
    }
}

impl<T: Prim + ?Sized> Prim for &mut T {
    type Target = T::Target;
    #[inline(always)]
    fn prim(&self) -> &T::Target {
        (**self).prim()
    }
}

/// Implements [`Prim`] (the identity) for value types.
#[macro_export]
#[doc(hidden)]
macro_rules! __impl_prim {
    ($([$($gen:tt)*] $t:ty),* $(,)?) => {$(
        impl<$($gen)*> $crate::__private::Prim for $t {
            type Target = Self;
            #[inline(always)]
            fn prim(&self) -> &Self {
                self
            }
        }
    )*};
}

__impl_prim!(
    [] f32, [] f64, [] i8, [] i16, [] i32, [] i64, [] i128, [] isize, [] u8, [] u16, [] u32,
    [] u64, [] u128, [] usize, [] bool, [T] [T], [T] Vec<T>, [T, const N: usize] [T; N],
    [A] (A,), [A, B] (A, B), [A, B, C] (A, B, C), [A, B, C, D] (A, B, C, D),
);

/// The value behind any number of references.
#[inline(always)]
pub fn prim<T: Prim + ?Sized>(x: &T) -> &T::Target {
    x.prim()
}

/// Values whose shape a derivative rule may need without needing the value:
/// the shape is `()` for scalars, so saving it inside a loop costs nothing.
pub trait Shaped {
    /// What must be kept to rebuild a gradient of the right shape.
    type Shape: Clone;
    /// The shape of `self`.
    fn shape(&self) -> Self::Shape;
}

impl Shaped for f32 {
    type Shape = ();
    #[inline(always)]
    fn shape(&self) {}
}

impl Shaped for f64 {
    type Shape = ();
    #[inline(always)]
    fn shape(&self) {}
}

macro_rules! int_shaped {
    ($($t:ty),*) => {$(
        impl Shaped for $t {
            type Shape = ();
            #[inline(always)]
            fn shape(&self) {}
        }
    )*};
}
int_shaped!(i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize);

/// The shape of a value of type `T`, typed by `T` so rules can be selected from it.
pub struct ShapeOf<T: Shaped + ?Sized>(pub T::Shape, PhantomData<fn() -> T>);

impl<T: Shaped + ?Sized> Clone for ShapeOf<T> {
    #[inline(always)]
    fn clone(&self) -> Self {
        ShapeOf(self.0.clone(), PhantomData)
    }
}

impl<T: Shaped + ?Sized> ShapeOf<T> {
    /// Wraps a shape.
    #[inline(always)]
    pub fn new(shape: T::Shape) -> Self {
        ShapeOf(shape, PhantomData)
    }
}

/// The shape of `x`.
#[inline(always)]
pub fn shape_of<T: Shaped + ?Sized>(x: &T) -> ShapeOf<T> {
    ShapeOf(x.shape(), PhantomData)
}

/// The shapeless zero of a tangent type.
#[inline(always)]
pub fn zero<T: Tangent>() -> T {
    T::zero()
}

/// A zero gradient shaped like `x`.
#[inline(always)]
pub fn zero_like<T: Differentiable + ?Sized>(x: &T) -> T::Tangent {
    x.zero_tangent()
}

/// The shapeless zero gradient of `x`'s type: typed by `x`, shaped by nothing
/// (no allocation; the first contribution is moved in).
#[inline(always)]
pub fn zero_of<T: Differentiable + ?Sized>(_: &T) -> T::Tangent {
    T::Tangent::zero()
}

/// The zero gradient of a container whose shape never changes in the
/// function (see the macro's `fixed_shape`): shaped like `x`, so the reverse
/// sweep indexes it with [`elem_in`].
#[inline(always)]
pub fn zero_shaped<T: Differentiable + ?Sized>(x: &T) -> T::Tangent {
    x.zero_tangent()
}

/// The `i`-th element of a gradient container allocated with its value's
/// shape ([`zero_shaped`]): indexed, never grown.
#[inline(always)]
pub fn elem_in<V: IndexTangent + ?Sized>(v: &mut V, i: usize) -> &mut V::Elem {
    v.elem_in(i)
}

/// A parameter's gradient with the full shape of the parameter.
#[inline(always)]
pub fn complete<T: Differentiable + ?Sized>(x: &T, t: T::Tangent) -> T::Tangent {
    x.complete_tangent(t)
}

/// `*dst += src`.
#[inline(always)]
pub fn acc<T: Tangent>(dst: &mut T, src: T) {
    dst.accumulate(src)
}

/// Moves the gradient out of `dst`, leaving zero.
#[inline(always)]
pub fn take<T: Tangent>(dst: &mut T) -> T {
    core::mem::replace(dst, T::zero())
}

/// The `i`-th element of a gradient container.
#[inline(always)]
pub fn elem_mut<V: IndexTangent + ?Sized>(v: &mut V, i: usize) -> &mut V::Elem {
    v.elem_mut(i)
}

/// A copy of a value the reverse sweep reads after the primal has moved on.
#[inline(always)]
pub fn save<T: Clone>(x: &T) -> T {
    x.clone()
}

/// An owned copy of a value the reverse sweep reads (`[usize]` -> `Vec<usize>`).
#[inline(always)]
pub fn save_owned<T: ToOwned + ?Sized>(x: &T) -> T::Owned {
    x.to_owned()
}

/// A new typed stack with room for `n` values.
#[inline(always)]
pub fn stack<T>(n: usize) -> Vec<T> {
    Vec::with_capacity(n)
}

/// Pops what the forward sweep pushed. The reverse sweep pops exactly what the
/// forward sweep pushed, so an empty stack is a bug in tapeless.
#[inline(always)]
pub fn pop<T, S: Pop<T>>(s: &mut S) -> T {
    s.pop_saved()
}

/// A stack the reverse sweep pops: [`Stack`] for saved values, `Vec` for
/// control-flow records.
pub trait Pop<T> {
    /// Pops the last value pushed.
    fn pop_saved(&mut self) -> T;
}

impl<T> Pop<T> for Vec<T> {
    #[inline(always)]
    fn pop_saved(&mut self) -> T {
        match self.pop() {
            Some(v) => v,
            None => unreachable!("tapeless: the reverse sweep popped an empty stack"),
        }
    }
}

/// The stack of one value the forward sweep saves inside a loop.
///
/// A `Vec`, except for zero-sized types that need no drop (the shape of a
/// scalar, `ShapeOf<f64>`, and type witnesses): those keep nothing at all, so
/// `push` and `pop` compile to nothing. (`Vec<ZST>` still keeps its length in
/// memory and checks it on every push and pop, and LLVM does not reliably
/// delete that.) The branch is on a constant of the type.
///
/// Its buffer comes from the thread's tape pool ([`crate::tape_pool`]) when it
/// first needs room and goes back there when the reverse sweep is over
/// ([`recycle`]), so repeated `_grad` calls reuse the same memory. (Not on `Drop`: a
/// `Drop` impl would make rustc's drop check require every saved type to
/// outlive the stack, and type witnesses of locals' references do not; `Vec`
/// escapes that with the unstable `#[may_dangle]`. A stack dropped with values
/// left frees its buffer as a `Vec` does.)
pub struct Stack<T> {
    v: Vec<T>,
    /// Zero-sized values pushed and not yet popped (debug builds only).
    #[cfg(debug_assertions)]
    zst: usize,
}

impl<T> Stack<T> {
    const NOTHING: bool = core::mem::size_of::<T>() == 0 && !core::mem::needs_drop::<T>();

    /// An empty stack.
    #[inline(always)]
    pub fn new() -> Self {
        Stack {
            v: Vec::new(),
            #[cfg(debug_assertions)]
            zst: 0,
        }
    }

    /// Makes room for `n` more values.
    #[inline(always)]
    pub fn reserve(&mut self, n: usize) {
        if !Self::NOTHING {
            if self.v.capacity() == 0 {
                self.take_buffer(n);
            }
            self.v.reserve(n);
        }
    }

    /// Pushes a value.
    #[inline(always)]
    pub fn push(&mut self, x: T) {
        if Self::NOTHING {
            // Nothing to keep: `pop` makes the value again.
            core::mem::forget(x);
            #[cfg(debug_assertions)]
            {
                self.zst += 1;
            }
        } else {
            if self.v.capacity() == 0 {
                self.take_buffer(1);
            }
            self.v.push(x);
        }
    }

    /// Takes a pooled buffer with room for `n` values, if one fits (the stack
    /// has no buffer yet). This and `recycle` inline to a call of a cold
    /// function that takes or returns the `Vec` by value: passing `&mut self`
    /// to an out-of-line function instead made the `rnn` bench's gradient 3%
    /// slower (the stack's address escapes the loop).
    #[inline(always)]
    fn take_buffer(&mut self, n: usize) {
        if let Some(v) = crate::tape_pool::take_vec(n) {
            self.v = v;
        }
    }

    /// Gives the stack's buffer to the pool (dropping any values left in
    /// it). A later `push` or `reserve` takes one again. Generated adjoints
    /// call it for every stack after the reverse sweep ([`recycle`]).
    #[inline(always)]
    fn recycle(&mut self) {
        // A stack that never took a buffer (its loop did not run, or the
        // call returned before it) has nothing to give: no call.
        if self.v.capacity() != 0 {
            crate::tape_pool::give_vec(core::mem::take(&mut self.v));
        }
    }
}

impl<T> Default for Stack<T> {
    #[inline(always)]
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Pop<T> for Stack<T> {
    #[inline(always)]
    fn pop_saved(&mut self) -> T {
        if Self::NOTHING {
            #[cfg(debug_assertions)]
            {
                match self.zst.checked_sub(1) {
                    Some(n) => self.zst = n,
                    None => unreachable!("tapeless: the reverse sweep popped an empty stack"),
                }
            }
            // SAFETY: `T` is zero-sized, so reading it reads no memory, and the
            // value stands for one that `push` was given and forgot (the reverse
            // sweep pops exactly what the forward sweep pushed; debug builds
            // check it). This is what `Vec<T>::pop` does for zero-sized `T`.
            unsafe { core::ptr::NonNull::<T>::dangling().as_ptr().read() }
        } else {
            self.v.pop_saved()
        }
    }
}

/// One run of a counted loop's pushes onto a stack: a `for` over a range,
/// which nothing leaves early, whose body saves a value onto the stack at
/// most once per iteration. Room for the trip count `n` is made once, when the
/// loop starts, and a push compares its count with `n`, a bound the loop does
/// not change, where `Stack::push` compares the length with a capacity that
/// its growth path may change: the compiler keeps the count in a register and
/// can often drop the check (GMM's gradient, whose fused point loop pushes
/// `xc[t]` and `qxc[t]` per element: 905 → 837 µs). The generated loop shadows the stack
/// with its run (`let mut __s3 = __private::run(&mut __s3, n);`) and ends it
/// with [`Run::done`], which hands the values to the stack.
///
/// A push past `n` panics (it would be a bug of the macro). A run that is
/// not ended (a panic in the loop) leaks the values it wrote: the stack's
/// length is only set by `done`, so nothing is dropped twice or read
/// uninitialised. No `Drop` impl, for the reason `Stack` has none.
pub struct Run<'s, T> {
    stack: &'s mut Stack<T>,
    ptr: *mut T,
    base: usize,
    count: usize,
    n: usize,
}

/// Starts a run of at most `n` pushes onto `stack` ([`Run`]).
#[inline(always)]
pub fn run<T>(stack: &mut Stack<T>, n: usize) -> Run<'_, T> {
    stack.reserve(n);
    let base = stack.v.len();
    let ptr = stack.v.as_mut_ptr();
    Run {
        stack,
        ptr,
        base,
        count: 0,
        n,
    }
}

impl<T> Run<'_, T> {
    /// Pushes a value.
    #[inline(always)]
    pub fn push(&mut self, x: T) {
        if Stack::<T>::NOTHING {
            return self.stack.push(x);
        }
        if self.count >= self.n {
            run_overflow();
        }
        // SAFETY: `run` reserved room for `n` values after the stack's length
        // `base` (and nothing else touches the vector while the run borrows
        // the stack), and `count < n`: the slot is inside the allocation,
        // past the length, so it holds no value that this write would leak or
        // that anything would read before `done` sets the length.
        unsafe { self.ptr.add(self.base + self.count).write(x) };
        self.count += 1;
    }

    /// Ends the run: the values pushed become the stack's top values.
    #[inline(always)]
    pub fn done(self) {
        if !Stack::<T>::NOTHING {
            // SAFETY: the `count` slots after `base` were written by `push`,
            // in order, within the capacity `run` reserved, and nothing else
            // changed the vector meanwhile (the run borrows the stack).
            unsafe { self.stack.v.set_len(self.base + self.count) };
        }
    }
}

#[cold]
#[inline(never)]
fn run_overflow() -> ! {
    panic!("tapeless: a loop saved more values than its trip count (a bug of #[differentiable], please report it)")
}

/// Gives a stack's buffer back to the per-thread pool once the reverse sweep
/// is over (the adjoint's last statement before it returns).
#[inline(always)]
pub fn recycle<T>(s: &mut Stack<T>) {
    if !Stack::<T>::NOTHING {
        s.recycle();
    }
}

/// A value saved once per loop execution, read by every reverse iteration.
#[inline(always)]
pub fn held<T>(h: &Option<T>) -> &T {
    match h {
        Some(v) => v,
        None => unreachable!("tapeless: the reverse sweep read an empty slot"),
    }
}

/// Takes the value a branch outside any loop saved for the reverse sweep.
#[inline(always)]
pub fn unslot<T>(s: &mut Option<T>) -> T {
    match s.take() {
        Some(v) => v,
        None => unreachable!("tapeless: the reverse sweep read an empty slot"),
    }
}

/// The gradient slot of a parameter that is not differentiated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NoGrad;

/// Adds the gradient a callee returned for one argument to the caller's adjoint.
/// A `NoGrad` (the callee does not differentiate that parameter) adds nothing.
pub trait AccFrom<G> {
    /// `*self += g`.
    fn acc_from(&mut self, g: G);
}

impl<T: Tangent> AccFrom<T> for T {
    #[inline(always)]
    fn acc_from(&mut self, g: T) {
        self.accumulate(g)
    }
}

impl<T: Tangent> AccFrom<NoGrad> for T {
    #[inline(always)]
    fn acc_from(&mut self, _: NoGrad) {}
}

/// An array passed where a slice is expected (`h(&arr)` with `h(xs: &[f64])`):
/// the callee's `Vec` gradient adds element-wise (a shorter `Vec` stands for
/// one padded with zeros).
impl<T: Tangent, const N: usize> AccFrom<Vec<T>> for [T; N] {
    #[inline]
    fn acc_from(&mut self, g: Vec<T>) {
        for (a, b) in self.iter_mut().zip(g) {
            a.accumulate(b);
        }
    }
}

/// `*dst += g` for a callee's gradient slot.
#[inline(always)]
pub fn acc_from<T: AccFrom<G>, G>(dst: &mut T, g: G) {
    dst.acc_from(g)
}

/// The sum of the tangents in `it` (the gradient of `[x; N]` / `vec![x; n]` with respect to `x`).
#[inline]
pub fn sum_tangents<T: Tangent, I: IntoIterator<Item = T>>(it: I) -> T {
    let mut s = T::zero();
    for t in it {
        s.accumulate(t);
    }
    s
}

/// A zero-sized value naming the type of `x`, saved where the reverse sweep
/// needs a gradient of that type but `x` is out of scope.
#[inline(always)]
pub fn witness<T: ?Sized>(_: &T) -> PhantomData<fn() -> T> {
    PhantomData
}

/// The shapeless zero gradient of the type a [`witness`] names.
#[inline(always)]
pub fn zero_for<T: Differentiable + ?Sized>(_: PhantomData<fn() -> T>) -> T::Tangent {
    T::Tangent::zero()
}

/// The type of a loop variable that the reverse sweep recomputes, tied to the
/// forward loop's variable (`tie`) so the recomputed one has the same type.
pub struct ItemType<T>(PhantomData<fn() -> T>);

impl<T> ItemType<T> {
    /// A type to be tied.
    #[inline(always)]
    pub fn new() -> Self {
        ItemType(PhantomData)
    }

    /// Ties the type to `x`'s.
    #[inline(always)]
    pub fn tie(&self, _: &T) {}
}

impl<T> Default for ItemType<T> {
    #[inline(always)]
    fn default() -> Self {
        Self::new()
    }
}

/// Values of integer ranges.
pub trait RangeIndex: Copy {
    /// The value `k` steps after `self` (it exists: the range reached it).
    fn nth_from(self, k: usize) -> Self;
}

macro_rules! range_index {
    ($($t:ty),*) => {$(
        impl RangeIndex for $t {
            #[inline(always)]
            fn nth_from(self, k: usize) -> Self {
                // Modular arithmetic, exact because the result is in range.
                self.wrapping_add(k as $t)
            }
        }
    )*};
}
range_index!(i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize);

impl RangeIndex for char {
    #[inline]
    fn nth_from(self, k: usize) -> Self {
        let mut c = self as u32 + k as u32;
        if (self as u32) < 0xD800 && c >= 0xD800 {
            // Ranges of `char` skip the surrogates.
            c += 0x800;
        }
        match char::from_u32(c) {
            Some(c) => c,
            None => unreachable!("tapeless: a recomputed loop variable left its range"),
        }
    }
}

/// The trip count of a `for` loop over a range that nothing leaves early:
/// the range's length (`size_hint` is exact for ranges and `step_by`).
#[inline(always)]
pub fn trip_count<I: Iterator>(it: I) -> usize {
    it.size_hint().0
}

/// The `k`-th value (from 0) of a range starting at `lo`.
#[inline(always)]
pub fn range_nth<T: RangeIndex>(_: &ItemType<T>, lo: T, k: usize) -> T {
    lo.nth_from(k)
}
