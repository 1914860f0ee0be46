//! Asking the system for memory before committing to it.

use crate::error::SolverError;

/// Reserves `bytes` and frees them at once. Under an address-space limit (`ulimit -v`, a
/// container's) a request the system cannot grant fails here, as
/// [`SolverError::OutOfMemory`] naming `what`, instead of aborting the process in the
/// allocations that follow (Rust aborts when an infallible allocation fails). With overcommit
/// and no limit, the kernel grants address space it may not back; nothing in-process can
/// detect that, which is why the solvers also estimate their memory against a budget.
pub(crate) fn probe(bytes: usize, what: &str) -> Result<(), SolverError> {
    let mut block: Vec<u8> = Vec::new();
    block
        .try_reserve_exact(bytes)
        .map_err(|_| SolverError::OutOfMemory {
            bytes,
            what: what.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_impossible_request_is_a_typed_error() {
        assert!(probe(1 << 20, "a megabyte").is_ok());
        // More than any address space: refused by the allocator, not an abort.
        let e = probe(usize::MAX / 2, "half the address space").unwrap_err();
        assert!(e.to_string().contains("half the address space"), "{e}");
    }
}
