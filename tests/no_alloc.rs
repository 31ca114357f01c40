//! Generating and verifying a code allocates nothing on the heap (a deterministic count).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use totp_mfa::Secret;
use totp_mfa::otp::{Algorithm, Code, Digits, Hotp, Totp, TotpParams, Window};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_in(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn generate_and_verify_do_not_allocate() {
    for (alg, len) in [
        (Algorithm::Sha1, 20),
        (Algorithm::Sha256, 32),
        (Algorithm::Sha512, 64),
    ] {
        let secret = Secret::from_bytes(&vec![7u8; len]).unwrap();
        let params = TotpParams::default()
            .with_algorithm(alg)
            .with_digits(Digits::EIGHT);
        let n = allocations_in(|| {
            let totp = Totp::new(&secret, params).unwrap();
            let code = totp.generate(1_234_567_890).unwrap();
            let typed = Code::parse(" 1234 5678\n", Digits::EIGHT).unwrap();
            let a = totp
                .verify(&code, 1_234_567_890, Window::default(), None)
                .unwrap();
            let b = totp
                .verify(
                    &typed,
                    1_234_567_890,
                    Window::symmetric(10).unwrap(),
                    Some(5),
                )
                .unwrap();
            let c = totp_mfa::otp::hotp(&secret, 9, alg, Digits::SIX).unwrap();
            let h = Hotp::new(&secret, alg, Digits::SIX)
                .unwrap()
                .verify(&c, 0, 20);
            let _ = std::hint::black_box((a, b, h));
        });
        assert_eq!(n, 0, "{alg}: {n} heap allocations");
    }
    // The counter works: this allocates.
    assert!(allocations_in(|| drop(std::hint::black_box(vec![1u8; 8]))) > 0);
}
