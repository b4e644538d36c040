//! A per-thread cache of the buffers that a `_grad` call's loop stacks used, so
//! that the next call on the same thread reuses them instead of allocating
//! (like the caching allocators of PyTorch and JAX, for the tape).
//!
//! The generated adjoint of a function with loops keeps the values its reverse
//! sweep reads in typed stacks (`__private::Stack`), created at the start of
//! each call and dropped at its end. Without a cache, every call allocates them
//! again; large buffers go back to the operating system in between (glibc trims
//! and unmaps them), so each call page-faults them in again and re-grows them.
//! With the cache, a stack that first needs room takes a buffer that an earlier
//! stack of this thread gave back, and gives it back when the reverse sweep is
//! over (`__private::recycle`, called by the generated adjoint for each of its
//! stacks before it returns): after the first calls, repeated calls of the same
//! function allocate nothing for their stacks. (A stack dropped with values
//! left, when a reverse sweep is cut short by a panic, frees its buffer.)
//!
//! Bounds: each thread keeps at most [`MAX_BUFFERS`] buffers and
//! [`MAX_BYTES`] bytes. When the cache is full, a buffer given back replaces
//! smaller ones (the smallest first), so the steady state of one big workload
//! keeps its big buffers; a buffer that does not fit is freed. The cached
//! buffers are freed when the thread exits, or now with [`release`]
//! (`tapeless::release_tape_memory`).

use core::cell::RefCell;
use core::ptr::NonNull;
use std::alloc::Layout;

/// The most buffers one thread keeps (a function's loops have one stack per
/// saved value; the GMM benchmark's gradient has 16, and a recursive function
/// holds its stacks' buffers while the calls below it run: `det` of an
/// 11 × 11 matrix by minors, 11 levels deep, holds about 50).
pub const MAX_BUFFERS: usize = 64;

/// The most bytes one thread keeps: 256 MiB. A bigger buffer is freed when its
/// stack is emptied.
pub const MAX_BYTES: usize = 256 << 20;

/// A buffer allocated by the global allocator with the layout
/// `(bytes, align)`, owned by the pool, holding no values.
#[derive(Clone, Copy)]
struct Buf {
    ptr: NonNull<u8>,
    bytes: usize,
    align: usize,
}

impl Buf {
    /// Frees the buffer.
    fn free(self) {
        let Ok(layout) = Layout::from_size_align(self.bytes, self.align) else {
            unreachable!("tapeless: a pooled buffer with an invalid layout")
        };
        // SAFETY: `ptr` was allocated by the global allocator with exactly this
        // layout (`give` is only called with the buffer of a `Vec<T>`:
        // `bytes = capacity * size_of::<T>()`, `align = align_of::<T>()`, the
        // layout `Vec` allocates and frees with), and the pool owned it: no
        // value or pointer outside the pool refers to it any more.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), layout) }
    }
}

/// The buffers one thread keeps: `bufs[..len]`, `bytes` in all.
struct Pool {
    bufs: [Option<Buf>; MAX_BUFFERS],
    len: usize,
    bytes: usize,
}

impl Pool {
    const fn new() -> Self {
        Pool {
            bufs: [None; MAX_BUFFERS],
            len: 0,
            bytes: 0,
        }
    }

    /// Removes and returns the smallest buffer of alignment `align` whose size
    /// is a multiple of `size` and at least `size * n`.
    fn take(&mut self, align: usize, size: usize, n: usize) -> Option<Buf> {
        let need = size.checked_mul(n)?;
        // `size` divides the byte count: a mask for the usual power-of-two
        // sizes, and the division (tens of cycles) only for a buffer that
        // would be the best so far. Recursive adjoints take and give buffers
        // at every call, so this scan is on their hot path.
        let divides = |bytes: usize| {
            if size.is_power_of_two() {
                bytes & (size - 1) == 0
            } else {
                bytes % size == 0
            }
        };
        let mut best: Option<(usize, usize)> = None;
        for (i, b) in self.bufs[..self.len].iter().enumerate() {
            let Some(b) = b else { continue };
            if b.bytes >= need
                && best.is_none_or(|(_, s)| b.bytes < s)
                && b.align == align
                && divides(b.bytes)
            {
                best = Some((i, b.bytes));
            }
        }
        let (i, _) = best?;
        Some(self.remove(i))
    }

    fn remove(&mut self, i: usize) -> Buf {
        let Some(b) = self.bufs[i].take() else {
            unreachable!("tapeless: an empty slot in the tape pool")
        };
        self.len -= 1;
        self.bufs[i] = self.bufs[self.len].take();
        self.bytes -= b.bytes;
        b
    }

    /// The index of the smallest buffer.
    fn smallest(&self) -> Option<usize> {
        let mut best: Option<(usize, usize)> = None;
        for (i, b) in self.bufs[..self.len].iter().enumerate() {
            if let Some(b) = b {
                if best.is_none_or(|(_, s)| b.bytes < s) {
                    best = Some((i, b.bytes));
                }
            }
        }
        best.map(|(i, _)| i)
    }

    /// Keeps `b`, evicting smaller buffers to make room, or frees it when it
    /// does not fit.
    fn give(&mut self, b: Buf) {
        if b.bytes > MAX_BYTES {
            return b.free();
        }
        while self.len == MAX_BUFFERS || self.bytes + b.bytes > MAX_BYTES {
            match self.smallest() {
                Some(i) if self.bufs[i].is_some_and(|s| s.bytes < b.bytes) => self.remove(i).free(),
                // Everything kept is at least as big: keep those.
                _ => return b.free(),
            }
        }
        self.bufs[self.len] = Some(b);
        self.len += 1;
        self.bytes += b.bytes;
    }

    fn clear(&mut self) {
        while self.len > 0 {
            self.remove(self.len - 1).free();
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.clear();
    }
}

thread_local! {
    static POOL: RefCell<Pool> = const { RefCell::new(Pool::new()) };
}

/// Runs `f` on this thread's pool, or returns `None` when the pool is gone (the
/// thread is exiting) or in use (re-entered from the global allocator).
fn with_pool<R>(f: impl FnOnce(&mut Pool) -> R) -> Option<R> {
    POOL.try_with(|p| p.try_borrow_mut().ok().map(|mut p| f(&mut p)))
        .ok()
        .flatten()
}

/// A `Vec<T>` with no values and room for at least `n` of them, made from a
/// pooled buffer; `None` when no pooled buffer fits.
#[cold]
#[inline(never)]
pub(crate) fn take_vec<T>(n: usize) -> Option<Vec<T>> {
    let size = core::mem::size_of::<T>();
    if size == 0 || n == 0 {
        return None;
    }
    let align = core::mem::align_of::<T>();
    let b = with_pool(|p| p.take(align, size, n)).flatten()?;
    // SAFETY: the conditions of `Vec::from_raw_parts`:
    // * `b.ptr` was allocated by the global allocator: it is the buffer of a
    //   `Vec` (with a non-zero capacity and a non-zero-sized element) that
    //   `give_vec` took over;
    // * `T` has the same alignment as what `b.ptr` was allocated with
    //   (`b.align == align_of::<T>()`, checked by `take`);
    // * the size of `T` times the capacity, `size * (b.bytes / size)`, is
    //   `b.bytes` (`take` checks that `size` divides it), the size the buffer
    //   was allocated with, so `dealloc`/`realloc` get the same layout;
    // * the length, 0, is at most the capacity, and no values need to be
    //   initialised;
    // * `b.bytes` is no larger than `isize::MAX`: it was the size of a `Vec`'s
    //   allocation;
    // * the pool no longer has the buffer: the `Vec` owns it alone.
    Some(unsafe { Vec::from_raw_parts(b.ptr.as_ptr().cast::<T>(), 0, b.bytes / size) })
}

/// Drops the values of `v` and keeps its buffer in the pool (or frees it).
#[cold]
#[inline(never)]
pub(crate) fn give_vec<T>(mut v: Vec<T>) {
    let size = core::mem::size_of::<T>();
    if size == 0 || v.capacity() == 0 {
        return;
    }
    v.clear();
    let mut v = core::mem::ManuallyDrop::new(v);
    let Some(ptr) = NonNull::new(v.as_mut_ptr().cast::<u8>()) else {
        unreachable!("tapeless: a Vec with a capacity and a null pointer")
    };
    let b = Buf {
        ptr,
        bytes: v.capacity() * size,
        align: core::mem::align_of::<T>(),
    };
    // When the pool is gone or busy, the buffer is freed here: `Buf::free`
    // frees with the same layout as `Vec`.
    if with_pool(|p| p.give(b)).is_none() {
        b.free();
    }
}

/// Frees the buffers this thread keeps for the stacks of `_grad` calls.
///
/// After a `_grad` call of a function with loops, the buffers of the stacks
/// its reverse sweep used (the values saved in loops) stay cached on the
/// calling thread, so that the next call reuses them instead of allocating.
/// Each thread keeps at most [`MAX_BUFFERS`] buffers and [`MAX_BYTES`] bytes,
/// and frees them when it exits. Call this to give the memory back sooner,
/// after the last gradient of a big workload. Other threads' caches are not
/// touched.
pub fn release() {
    with_pool(Pool::clear);
}

/// The number of buffers and of bytes this thread keeps now.
pub fn cached() -> (usize, usize) {
    with_pool(|p| (p.len, p.bytes)).unwrap_or((0, 0))
}
