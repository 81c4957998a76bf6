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

/// Gives back the pages of code and read-only data that starting and the last burst of work touched.
///
/// Starting (arguments, configuration, enrolment, TLS, opening the cache) and applying a bundle run code that an idle
/// agent never runs again, and the kernel maps the program in 64 KiB runs around every page touched: an agent idle
/// with 50 works held ~40 MiB of its program and the Swift libraries resident, most of it never used again. Once the
/// agent has been quiet a while it hands those pages back (`madvise(MADV_PAGEOUT)`); what its idle loops use comes
/// back at their next run and stays. Pages another process maps are left alone.
struct CodePages {
    /// Seconds without a new bundle before the pages go back.
    let quiet: Double
    /// The bundles seen when the pages last went back (nil: not yet since start).
    private var releasedAt: Int?

    init(quiet: Double) {
        self.quiet = quiet
    }

    /// Whether to release now, given how many bundles have arrived and how long ago the last activity was; and how
    /// long to wait before asking again.
    mutating func decide(bundles: Int, quietFor elapsed: Double) -> (release: Bool, wait: Double) {
        guard releasedAt != bundles else { return (false, quiet) }
        guard elapsed >= quiet else { return (false, quiet - elapsed) }
        releasedAt = bundles
        return (true, quiet)
    }

    /// Releases the pages; the number of mappings released, or nil where the system cannot.
    static func release() -> Int? {
        let released = cairn_release_code_pages()
        return released < 0 ? nil : Int(released)
    }
}
