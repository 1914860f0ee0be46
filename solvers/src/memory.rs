//! Asking the system for memory before committing to it.

use crate::error::SolverError;

/// The memory a solver may estimate for itself unless told otherwise (`Bvp::max_memory`,
/// `Direct::max_memory`; the shooting method and the equilibrium search use it as is).
pub(crate) const DEFAULT_MAX_MEMORY: usize = 16 << 30;

/// Refuses a computation whose `estimate` is above `limit` ([`SolverError::MemoryLimit`],
/// naming the solver, what to do, its mesh nodes and `D`), then asks the system for the
/// estimate ([`probe`]): every solver's check before its large allocations.
pub(crate) fn reserve(
    estimate: usize,
    limit: usize,
    solver: &'static str,
    advice: &'static str,
    nodes: usize,
    dim: usize,
) -> Result<(), SolverError> {
    if estimate > limit {
        return Err(SolverError::MemoryLimit {
            solver,
            advice,
            estimate,
            limit,
            nodes,
            dim,
        });
    }
    probe(estimate, &format!("the {solver}"))
}

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
