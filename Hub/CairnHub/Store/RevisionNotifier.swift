/// Wakes long-polls when a cluster's revision moves. A waiter registers before it reads the revision, so a
/// change committed between the read and the wait is never missed.
public actor RevisionNotifier {
    private struct Waiter {
        var fired = false
        var continuation: CheckedContinuation<Void, Never>?
    }

    private var waiters: [String: [Int: Waiter]] = [:]
    private var nextID = 0

    public init() {}

    public func register(_ cluster: String) -> Int {
        nextID += 1
        waiters[cluster, default: [:]][nextID] = Waiter()
        return nextID
    }

    public func publish(_ cluster: String) {
        guard let clusterWaiters = waiters[cluster] else { return }
        for (id, waiter) in clusterWaiters {
            if let continuation = waiter.continuation {
                waiters[cluster]?[id] = nil
                continuation.resume()
            } else {
                waiters[cluster]?[id]?.fired = true
            }
        }
        if waiters[cluster]?.isEmpty == true { waiters[cluster] = nil }
    }

    private func suspend(_ cluster: String, id: Int) async {
        guard let waiter = waiters[cluster]?[id], !waiter.fired else { return }
        await withCheckedContinuation { continuation in
            waiters[cluster]?[id]?.continuation = continuation
        }
    }

    private func finish(_ cluster: String, id: Int) {
        if let waiter = waiters[cluster]?.removeValue(forKey: id) { waiter.continuation?.resume() }
        if waiters[cluster]?.isEmpty == true { waiters[cluster] = nil }
    }

    /// Waits for a publish after `register`, the timeout, or cancellation, whichever comes first.
    public nonisolated func wait(_ cluster: String, id: Int, timeout: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.suspend(cluster, id: id) }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            await self.finish(cluster, id: id)
            group.cancelAll()
        }
    }

    public func cancel(_ cluster: String, id: Int) { finish(cluster, id: id) }
}
