import CairnMemory

/// Gives memory that a pass freed back to the system.
///
/// A reconcile pass decodes every cached work and the live objects it reads, and a bundle decodes its works: several
/// MiB each time, freed when it ends. glibc returns only the top of its heap; what was freed below live blocks stays
/// resident until `malloc_trim`, which releases every free page, wherever it is.
enum FreedMemory {
    static func release() {
        cairn_release_freed_memory()
    }
}
