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

/// "No slot": the end of a class's list.
const NONE: u8 = u8::MAX;

/// The size class of a buffer of `bytes` bytes: `⌊log₂ bytes⌋`. Every
/// buffer of a higher class is bigger than every buffer of a lower one.
fn class(bytes: usize) -> usize {
    (usize::BITS - 1 - bytes.leading_zeros()) as usize
}

/// The buffers one thread keeps, `bytes` in all, in `slots`, linked into one
/// list per size class ([`class`]): `head[c]` is the first slot of class
/// `c`, `next[i]` the slot after slot `i`. `classes` has bit `c` set when
/// class `c` has a buffer, `free` bit `i` when slot `i` is empty (so the pool
/// is full when `free` is 0). Taking a buffer looks at the classes from the
/// requested size up and stops at the first buffer that fits, instead of
/// scanning every buffer: a recursive adjoint takes and gives buffers at
/// every call, with tens of them cached, so this is on its hot path.
struct Pool {
    slots: [Option<Buf>; MAX_BUFFERS],
    next: [u8; MAX_BUFFERS],
    head: [u8; usize::BITS as usize],
    classes: u64,
    free: u64,
    bytes: usize,
}

// The slot and class bitmasks are `u64`s.
const _: () = assert!(MAX_BUFFERS <= 64 && usize::BITS <= 64);

impl Pool {
    const fn new() -> Self {
        Pool {
            slots: [None; MAX_BUFFERS],
            next: [NONE; MAX_BUFFERS],
            head: [NONE; usize::BITS as usize],
            classes: 0,
            free: if MAX_BUFFERS == 64 {
                u64::MAX
            } else {
                (1 << MAX_BUFFERS) - 1
            },
            bytes: 0,
        }
    }

    /// Removes and returns a buffer of alignment `align` whose size is a
    /// multiple of `size` and at least `size * n`: the first that fits in the
    /// lowest class that has one, so one of the smallest that fit (buffers of
    /// one class are usually of one size: `Vec` grows by doubling).
    fn take(&mut self, align: usize, size: usize, n: usize) -> Option<Buf> {
        let need = size.checked_mul(n)?;
        // `size` divides the byte count: a mask for the usual power-of-two
        // sizes, the division only otherwise.
        let divides = |bytes: usize| {
            if size.is_power_of_two() {
                bytes & (size - 1) == 0
            } else {
                bytes % size == 0
            }
        };
        let mut classes = self.classes & (u64::MAX << class(need));
        while classes != 0 {
            let c = classes.trailing_zeros() as usize;
            classes &= classes - 1;
            let (mut prev, mut i) = (NONE, self.head[c]);
            while i != NONE {
                let b = self.buf(i);
                if b.bytes >= need && b.align == align && divides(b.bytes) {
                    return Some(self.unlink(c, prev, i));
                }
                (prev, i) = (i, self.next[usize::from(i)]);
            }
        }
        None
    }

    /// The buffer in slot `i`, which holds one.
    fn buf(&self, i: u8) -> Buf {
        let Some(b) = self.slots[usize::from(i)] else {
            unreachable!("tapeless: an empty slot in a tape pool list")
        };
        b
    }

    /// Removes slot `i`, which follows `prev` (or heads the list) in class
    /// `c`'s list, and returns its buffer.
    fn unlink(&mut self, c: usize, prev: u8, i: u8) -> Buf {
        let b = self.buf(i);
        let after = self.next[usize::from(i)];
        if prev == NONE {
            self.head[c] = after;
            if after == NONE {
                self.classes &= !(1 << c);
            }
        } else {
            self.next[usize::from(prev)] = after;
        }
        self.slots[usize::from(i)] = None;
        self.free |= 1 << i;
        self.bytes -= b.bytes;
        b
    }

    /// Where the smallest buffer is: its class, the slot before it in the
    /// class's list (or `NONE`) and its slot.
    fn smallest(&self) -> Option<(usize, u8, u8)> {
        if self.classes == 0 {
            return None;
        }
        let c = self.classes.trailing_zeros() as usize;
        let mut best = (NONE, self.head[c]);
        let (mut prev, mut i) = best;
        while i != NONE {
            if self.buf(i).bytes < self.buf(best.1).bytes {
                best = (prev, i);
            }
            (prev, i) = (i, self.next[usize::from(i)]);
        }
        Some((c, best.0, best.1))
    }

    /// Keeps `b`, evicting smaller buffers (the smallest first) to make room,
    /// or frees it when it does not fit.
    fn give(&mut self, b: Buf) {
        if b.bytes > MAX_BYTES {
            return b.free();
        }
        while self.free == 0 || self.bytes + b.bytes > MAX_BYTES {
            match self.smallest() {
                Some((c, prev, i)) if self.buf(i).bytes < b.bytes => {
                    self.unlink(c, prev, i).free();
                }
                // Everything kept is at least as big: keep those.
                _ => return b.free(),
            }
        }
        let i = self.free.trailing_zeros() as u8;
        let c = class(b.bytes);
        self.free &= !(1 << i);
        self.slots[usize::from(i)] = Some(b);
        self.next[usize::from(i)] = self.head[c];
        self.head[c] = i;
        self.classes |= 1 << c;
        self.bytes += b.bytes;
    }

    fn clear(&mut self) {
        while let Some((c, prev, i)) = self.smallest() {
            self.unlink(c, prev, i).free();
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
    with_pool(|p| (MAX_BUFFERS - p.free.count_ones() as usize, p.bytes)).unwrap_or((0, 0))
}
