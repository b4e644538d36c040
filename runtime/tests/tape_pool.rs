//! The tape pool: the stacks of generated adjoints (`__private::Stack`) take
//! their buffers from a per-thread cache when they first need room and give
//! them back when the adjoint's reverse sweep is over (`recycle`, which the
//! generated code calls for every stack before it returns). Values survive, are dropped
//! exactly once, buffers are reused only by types of the same alignment, and
//! the cache stays within its bounds. Runs under Miri (`.ci/run`), which
//! checks the layouts buffers are freed with and that nothing leaks.
//!
//! Each test runs on its own thread (libtest), so it sees its own pool.

use std::cell::Cell;
use tapeless_runtime::__private::{pop, recycle, run, Stack};
use tapeless_runtime::tape_pool::{self, cached, MAX_BUFFERS, MAX_BYTES};

/// Element counts: smaller under Miri, which is slow.
const N: usize = if cfg!(miri) { 200 } else { 10_000 };

/// Pushes `xs` onto a new stack reserved for them, pops them all and checks
/// they come back in reverse order.
fn round_trip<T: Clone + PartialEq + std::fmt::Debug>(xs: &[T]) {
    let mut s = Stack::new();
    s.reserve(xs.len());
    for x in xs {
        s.push(x.clone());
    }
    for x in xs.iter().rev() {
        assert_eq!(&pop(&mut s), x);
    }
    recycle(&mut s);
}

/// A stack of `n` values `f(0..n)`, reserved or grown by pushes.
fn filled<T>(n: usize, reserve: bool, f: impl Fn(usize) -> T) -> Stack<T> {
    let mut s = Stack::new();
    if reserve {
        s.reserve(n);
    }
    for i in 0..n {
        s.push(f(i));
    }
    s
}

/// Pops the `n` values `f(0..n)` of `s`, checking them, and recycles it as
/// a generated adjoint does after its reverse sweep.
fn emptied<T: PartialEq + std::fmt::Debug>(s: &mut Stack<T>, n: usize, f: impl Fn(usize) -> T) {
    for i in (0..n).rev() {
        assert_eq!(pop(s), f(i));
    }
    recycle(s);
}

#[test]
fn values_survive_for_every_type() {
    tape_pool::release();
    for _ in 0..3 {
        round_trip(&(0..N).map(|i| i as f64 * 0.5).collect::<Vec<_>>());
        round_trip(&(0..N).map(|i| i as f32 - 3.0).collect::<Vec<_>>());
        round_trip(&(0..N).map(|i| i as u8).collect::<Vec<_>>());
        round_trip(&(0..N).map(|i| (i as f64, i * 7)).collect::<Vec<_>>());
        round_trip(&(0..N).map(|i| i % 3 == 0).collect::<Vec<_>>());
        round_trip(
            &(0..N / 10)
                .map(|i| vec![i as f64; i % 5])
                .collect::<Vec<_>>(),
        );
        round_trip(&(0..N / 10).map(|i| i.to_string()).collect::<Vec<_>>());
    }
    // Alignments 8, 4, 1 (bool and u8 share buffers, so may the 24-byte
    // String and Vec<f64>): one buffer per stack at most.
    let (bufs, bytes) = cached();
    assert!((3..=7).contains(&bufs), "{bufs} buffers");
    assert!(bytes > 0);
    tape_pool::release();
    assert_eq!(cached(), (0, 0));
}

#[test]
fn an_emptied_stack_gives_its_buffer_back_and_the_next_takes_it() {
    tape_pool::release();
    let mut s = filled(100, true, |i| i as f64);
    assert_eq!(cached(), (0, 0));
    emptied(&mut s, 100, |i| i as f64);
    assert_eq!(cached(), (1, 800));
    drop(s);
    assert_eq!(cached(), (1, 800));
    // Same alignment and a size that divides 800: `(f64, usize)`.
    let mut s = Stack::new();
    s.reserve(50);
    assert_eq!(cached(), (0, 0), "(f64, usize) takes the f64 buffer");
    for i in 0..50 {
        s.push((i as f64, i));
    }
    emptied(&mut s, 50, |i| (i as f64, i));
    assert_eq!(cached(), (1, 800));
    // The same stack used again takes a buffer again.
    s.push((1.0, 1));
    assert_eq!(cached(), (0, 0));
    assert_eq!(pop(&mut s), (1.0, 1));
    recycle(&mut s);
    assert_eq!(cached(), (1, 800));
    // A different alignment does not take it.
    let mut s = filled(2, false, |i| i as f32);
    assert_eq!(cached(), (1, 800));
    emptied(&mut s, 2, |i| i as f32);
    assert_eq!(cached(), (2, 800 + 16), "f32: Vec's first capacity is 4");
    let mut s = filled(1, false, |i| i as u8);
    assert_eq!(cached().0, 2, "u8 has alignment 1: nothing fits");
    emptied(&mut s, 1, |i| i as u8);
    assert_eq!(cached().0, 3);
    // A request bigger than every buffer takes none.
    let mut s = filled(101, true, |i| i as u64);
    assert_eq!(cached().0, 3);
    emptied(&mut s, 101, |i| i as u64);
    assert_eq!(cached().0, 4);
    tape_pool::release();
    assert_eq!(cached(), (0, 0));
}

#[test]
fn the_smallest_buffer_that_fits_is_taken() {
    tape_pool::release();
    let mut three: Vec<Stack<f64>> = [1000usize, 10, 100]
        .into_iter()
        .map(|n| filled(n, true, |i| i as f64))
        .collect();
    for (s, n) in three.iter_mut().zip([1000, 10, 100]) {
        emptied(s, n, |i| i as f64);
    }
    assert_eq!(cached(), (3, 8 * 1110));
    let mut s = Stack::new();
    s.reserve(50);
    s.push(0.5f64);
    assert_eq!(cached(), (2, 8 * 1010), "took the 100");
    let mut t = Stack::new();
    t.push(0.25f64);
    assert_eq!(cached(), (1, 8 * 1000), "push takes the smallest: 10");
    // Grows past the pooled capacity with `Vec`'s own growth.
    for i in 0..N {
        t.push(i as f64);
    }
    for i in (0..N).rev() {
        assert_eq!(pop(&mut t), i as f64);
    }
    assert_eq!(pop(&mut t), 0.25);
    assert_eq!(pop(&mut s), 0.5);
    recycle(&mut t);
    recycle(&mut s);
    let (bufs, bytes) = cached();
    assert_eq!(bufs, 3);
    assert!(bytes >= 8 * (1100 + N), "{bytes}");
}

/// Buffers are kept in lists by size class (`⌊log₂ bytes⌋`): a take walks
/// past what does not fit in the lowest class that may hold a fit, then
/// looks in the higher classes.
#[test]
fn a_class_is_walked_past_what_does_not_fit() {
    tape_pool::release();
    // Class 6 (64..128 bytes): 96 bytes of f64, then 64 bytes of f64 and
    // 64 bytes of u8, given back in that order (the last heads the list).
    let mut a = filled(12, true, |i| i as f64);
    let mut b = filled(8, true, |i| i as f64);
    let mut c = filled(64, true, |i| i as u8);
    emptied(&mut a, 12, |i| i as f64);
    emptied(&mut b, 8, |i| i as f64);
    emptied(&mut c, 64, |i| i as u8);
    assert_eq!(cached(), (3, 96 + 64 + 64));
    // 10 f64 (80 bytes): past the u8 buffer (alignment) and the 64-byte one
    // (too small) to the 96-byte one.
    let mut s = Stack::new();
    s.reserve(10);
    assert_eq!(cached(), (2, 64 + 64), "took the 96-byte buffer");
    // 8 f64 (64 bytes): the 64-byte f64 buffer, not the u8 one before it.
    let mut t = Stack::new();
    t.reserve(8);
    assert_eq!(cached(), (1, 64), "took the 64-byte f64 buffer");
    // 9 f64 (72 bytes): nothing of alignment 8 is left; `Vec` allocates.
    let mut u = Stack::new();
    u.reserve(9);
    assert_eq!(cached(), (1, 64));
    for (st, n) in [(&mut s, 10), (&mut t, 8), (&mut u, 9)] {
        for i in 0..n {
            st.push(i as f64);
        }
        emptied(st, n, |i| i as f64);
    }
    assert_eq!(cached(), (4, 64 + 96 + 64 + 72));
    // A request above every class takes nothing; a small one takes the
    // first fit in the lowest class (all four are in class 6): the 72-byte
    // buffer, given back last, heads its list.
    let mut big = Stack::<f64>::new();
    big.reserve(100);
    assert_eq!(cached().0, 4);
    let mut small = Stack::<f64>::new();
    small.reserve(1);
    assert_eq!(cached(), (3, 64 + 96 + 64), "took the 72-byte buffer");
    for st in [&mut big, &mut small] {
        st.push(1.0);
        emptied(st, 1, |_| 1.0);
    }
    tape_pool::release();
    assert_eq!(cached(), (0, 0));
}

thread_local! {
    static DROPS: Cell<usize> = const { Cell::new(0) };
}

/// Counts its drops (per thread).
#[derive(Debug, PartialEq)]
struct Counted(u64, String);

impl Drop for Counted {
    fn drop(&mut self) {
        DROPS.with(|d| d.set(d.get() + 1));
    }
}

fn drops() -> usize {
    DROPS.with(Cell::get)
}

#[test]
fn values_that_need_drop_are_dropped_once() {
    tape_pool::release();
    let n = N / 10;
    let counted = |i: usize| Counted(i as u64, format!("{i}"));
    // Emptied: every value is popped, and the buffer goes to the pool.
    for round in 0..3 {
        let before = drops();
        let mut s = filled(n, true, counted);
        // Each pop drops the popped value and the one compared with it.
        emptied(&mut s, n, counted);
        assert_eq!(drops() - before, 2 * n, "round {round}");
        drop(s);
        assert_eq!(drops() - before, 2 * n);
        assert_eq!(cached().0, 1, "round {round}");
    }
    // Dropped partly popped (a reverse sweep cut short): the values left are
    // dropped with the stack, and the buffer is freed, not pooled.
    let before = drops();
    let mut s = filled(n, true, counted);
    assert_eq!(cached(), (0, 0));
    for i in (n / 3..n).rev() {
        assert_eq!(pop(&mut s), counted(i));
    }
    assert_eq!(drops() - before, 2 * (n - n / 3));
    drop(s);
    assert_eq!(drops() - before, 2 * (n - n / 3) + n / 3);
    assert_eq!(cached(), (0, 0));
    // Strings and vectors, and a 16-byte type in a 32-byte type's buffer.
    round_trip(&(0..n).map(|i| format!("{i}")).collect::<Vec<_>>());
    round_trip(&(0..n).map(|i| vec![i as f64; 3]).collect::<Vec<_>>());
    let bytes = cached().1;
    let mut s = filled(n, true, |i| [i as f64, -(i as f64)]);
    assert!(cached().1 < bytes);
    emptied(&mut s, n, |i| [i as f64, -(i as f64)]);
}

/// Zero-sized values that need drop keep no buffer but are still dropped.
#[test]
fn zero_sized_values_with_drop() {
    struct Z;
    impl Drop for Z {
        fn drop(&mut self) {
            DROPS.with(|d| d.set(d.get() + 1));
        }
    }
    tape_pool::release();
    let before = drops();
    let mut s = filled(10, true, |_| Z);
    drop(pop(&mut s));
    drop(s);
    assert_eq!(drops() - before, 10);
    let mut s = filled(10, true, |_| Z);
    for _ in 0..10 {
        drop(pop(&mut s));
    }
    assert_eq!(drops() - before, 20);
    assert_eq!(cached(), (0, 0));
    // Zero-sized values without drop keep nothing at all.
    let mut s = filled(10, true, |_| ());
    for _ in 0..10 {
        pop(&mut s);
    }
    assert_eq!(cached(), (0, 0));
}

#[test]
fn many_stacks_at_once_and_the_count_bound() {
    tape_pool::release();
    let k = MAX_BUFFERS + 8;
    let value = |j: usize| move |i: usize| (i * k + j) as f64;
    let mut stacks: Vec<Stack<f64>> = (0..k).map(|j| filled(8 + j, true, value(j))).collect();
    for (j, s) in stacks.iter_mut().enumerate() {
        emptied(s, 8 + j, value(j));
    }
    drop(stacks);
    // The biggest `MAX_BUFFERS` are kept: sizes 8 + j for j in 8..k.
    let kept: usize = (8..k).map(|j| 8 * (8 + j)).sum();
    assert_eq!(cached(), (MAX_BUFFERS, kept));
    // A smaller buffer given back to a full pool is freed.
    let mut s = filled(4, true, |i| i as u32);
    assert_eq!(cached(), (MAX_BUFFERS, kept), "no buffer of alignment 4");
    emptied(&mut s, 4, |i| i as u32);
    assert_eq!(cached(), (MAX_BUFFERS, kept));
    // A bigger one replaces the smallest (16 elements).
    let mut s = filled(1000, true, |i| i as u8);
    emptied(&mut s, 1000, |i| i as u8);
    assert_eq!(cached(), (MAX_BUFFERS, kept - 8 * 16 + 1000));
    tape_pool::release();
    assert_eq!(cached(), (0, 0));
}

/// Big buffers are only reserved, never touched, so this costs no memory
/// natively; Miri would initialise them.
#[test]
#[cfg_attr(miri, ignore)]
fn the_byte_bound() {
    tape_pool::release();
    let mut s = filled(1, false, |i| i as u8);
    s.reserve(MAX_BYTES);
    emptied(&mut s, 1, |i| i as u8);
    assert_eq!(cached(), (0, 0), "bigger than the whole pool: freed");
    let third = MAX_BYTES / 3;
    let mut a = Stack::<u8>::new();
    a.reserve(third);
    let mut b = Stack::<u8>::new();
    b.reserve(2 * third);
    let mut c = Stack::<u8>::new();
    c.reserve(2 * third + 1);
    for s in [&mut c, &mut b, &mut a] {
        s.push(1);
        pop(s);
        recycle(s);
    }
    // c is kept, b does not fit beside it and is not bigger, a fits.
    assert_eq!(cached(), (2, third + 2 * third + 1));
    tape_pool::release();
    assert_eq!(cached(), (0, 0));
}

#[test]
fn buffers_are_per_thread_and_freed_at_thread_exit() {
    tape_pool::release();
    std::thread::spawn(|| {
        let mut s = filled(64, true, |i| i as f64);
        emptied(&mut s, 64, |i| i as f64);
        assert_eq!(cached(), (1, 512));
        // The thread exits with its buffer cached: the pool's destructor
        // frees it (Miri reports a leak otherwise).
    })
    .join()
    .unwrap();
    assert_eq!(cached(), (0, 0));
}

#[test]
fn the_release_function() {
    let mut s = filled(10, true, |i| i as u32);
    emptied(&mut s, 10, |i| i as u32);
    assert_eq!(cached().0, 1);
    tapeless_runtime::release_tape_memory();
    assert_eq!(cached(), (0, 0));
}

/// A stack may hold borrows of locals declared after it (the generated code
/// declares its stacks first): it has no `Drop` impl, so, as for `Vec`, drop
/// check lets the borrow end before the stack is dropped.
#[test]
fn a_stack_may_outlive_the_borrows_it_held() {
    let mut s = Stack::new();
    let v = [1.0f64, 2.0];
    s.push(&v);
    assert_eq!(pop(&mut s), &v);
}

/// A run (`__private::run`, what a counted loop pushes through) leaves the
/// stack as the same pushes would: values in order, on top of what was
/// there, fewer than its bound allowed, values that need drop dropped once.
#[test]
fn a_run_pushes_what_push_would() {
    tape_pool::release();
    let mut s = Stack::new();
    s.push(-1.0f64);
    let mut r = run(&mut s, 5);
    for i in 0..5 {
        r.push(i as f64);
    }
    r.done();
    // A second run, bounded by 10, pushes 3 (a `continue` skipped the rest).
    let mut r = run(&mut s, 10);
    for i in 5..8 {
        r.push(i as f64);
    }
    r.done();
    for i in (0..8).rev() {
        assert_eq!(pop(&mut s), i as f64);
    }
    assert_eq!(pop(&mut s), -1.0);
    recycle(&mut s);
    let before = drops();
    let counted = |i: usize| Counted(i as u64, format!("{i}"));
    let mut s = Stack::new();
    let mut r = run(&mut s, 4);
    for i in 0..4 {
        r.push(counted(i));
    }
    r.done();
    emptied(&mut s, 4, counted);
    assert_eq!(drops() - before, 8, "each popped value and its comparand");
    // Zero-sized values keep no buffer, through a run as through push.
    let mut z = Stack::new();
    let mut r = run(&mut z, 3);
    for _ in 0..3 {
        r.push(());
    }
    r.done();
    for _ in 0..3 {
        pop(&mut z);
    }
    tape_pool::release();
}

/// A push past the run's bound panics instead of writing past the room the
/// run made.
#[test]
#[should_panic(expected = "more values than its trip count")]
fn a_run_past_its_bound_panics() {
    let mut s = Stack::new();
    let mut r = run(&mut s, 2);
    for i in 0..3 {
        r.push(i as f64);
    }
    r.done();
}

/// A run cut short by a panic leaves the stack as it was before the run:
/// its length is only set by `done`.
#[test]
fn a_run_cut_short_leaves_the_stack_as_it_was() {
    let mut s = Stack::new();
    s.push(7.0f64);
    let cut = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut r = run(&mut s, 4);
        r.push(1.0);
        r.push(2.0);
        panic!("cut short");
    }));
    assert!(cut.is_err());
    s.push(8.0);
    assert_eq!(pop(&mut s), 8.0);
    assert_eq!(pop(&mut s), 7.0);
    recycle(&mut s);
}
