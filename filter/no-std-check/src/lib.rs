//! Built for `wasm32-unknown-unknown` by the test command. If anything in mcpgate-filter's
//! dependency tree pulled in `std`, this crate would fail to link (duplicate panic handler /
//! missing allocator shim), so a successful build proves the core is `no_std` + `alloc`.
#![cfg_attr(target_arch = "wasm32", no_std)]
#![cfg(target_arch = "wasm32")]

extern crate alloc;

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;

const HEAP_SIZE: usize = 1 << 20;

/// A bump allocator: enough for a link check, never frees.
struct Bump {
    heap: UnsafeCell<[u8; HEAP_SIZE]>,
    next: UnsafeCell<usize>,
}

// SAFETY: wasm32-unknown-unknown without atomics is single-threaded.
unsafe impl Sync for Bump {}

unsafe impl GlobalAlloc for Bump {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: single-threaded; `next` is only touched here.
        let next = unsafe { &mut *self.next.get() };
        let start = (*next + layout.align() - 1) & !(layout.align() - 1);
        match start.checked_add(layout.size()) {
            Some(end) if end <= HEAP_SIZE => {
                *next = end;
                // SAFETY: start..end lies inside the heap array.
                unsafe { (self.heap.get() as *mut u8).add(start) }
            }
            _ => core::ptr::null_mut(),
        }
    }
    unsafe fn dealloc(&self, _: *mut u8, _: Layout) {}
}

#[global_allocator]
static ALLOCATOR: Bump = Bump {
    heap: UnsafeCell::new([0; HEAP_SIZE]),
    next: UnsafeCell::new(0),
};

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}

/// # Safety
/// `ptr..ptr+len` must be readable memory.
///
/// Parses a JWKS from linear memory and reports how many keys were usable, so the verifier,
/// the key parsers and serde_json are all linked in.
#[no_mangle]
pub unsafe extern "C" fn usable_keys(ptr: *const u8, len: usize) -> i32 {
    // SAFETY: the caller passes a valid buffer.
    let doc = unsafe { core::slice::from_raw_parts(ptr, len) };
    match mcpgate_filter::jwt::KeySet::from_json(doc) {
        Ok(set) => set.len() as i32,
        Err(_) => -1,
    }
}

/// # Safety
/// Both buffers must be readable memory.
///
/// Verifies a token against a key set, linking the full verification path.
#[no_mangle]
pub unsafe extern "C" fn verify(
    jwks: *const u8,
    jwks_len: usize,
    tok: *const u8,
    tok_len: usize,
) -> i32 {
    use mcpgate_filter::jwt::{AlgorithmSet, AudienceRule, Policy};
    // SAFETY: the caller passes valid buffers.
    let (doc, token) = unsafe {
        (
            core::slice::from_raw_parts(jwks, jwks_len),
            core::slice::from_raw_parts(tok, tok_len),
        )
    };
    let Ok(keys) = mcpgate_filter::jwt::KeySet::from_json(doc) else {
        return -1;
    };
    let Ok(token) = core::str::from_utf8(token) else {
        return -2;
    };
    let policy = Policy::new(
        alloc::string::String::from("issuer"),
        AlgorithmSet::ASYMMETRIC,
        AudienceRule::Audience(alloc::string::String::from("aud")),
    );
    match policy.verify(token, &keys, 0, None) {
        Ok(_) => 0,
        Err(_) => 1,
    }
}
