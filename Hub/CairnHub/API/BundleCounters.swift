import Synchronization

/// Counts what the bundle endpoint answered: full bundles, deltas, and "nothing new".
public final class BundleCounters: Sendable {
    private let counts = Mutex<(full: Int, delta: Int, nothingNew: Int)>((0, 0, 0))
    public init() {}

    public var full: Int { counts.withLock { $0.full } }
    public var delta: Int { counts.withLock { $0.delta } }
    public var nothingNew: Int { counts.withLock { $0.nothingNew } }

    func record(full: Bool?) {
        counts.withLock {
            switch full {
            case .some(true): $0.full += 1
            case .some(false): $0.delta += 1
            case .none: $0.nothingNew += 1
            }
        }
    }
}
