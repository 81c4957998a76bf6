/// A wake-up call for one waiting loop: fired any number of times, it wakes the loop once.
public actor Wakeup {
    private var fired = false
    private var waiter: (id: Int, continuation: CheckedContinuation<Void, Never>)?
    private var lastID = 0
    /// Every wait up to this one has ended.
    private var settledID = 0

    public init() {}

    public func fire() {
        if let waiter {
            self.waiter = nil
            waiter.continuation.resume()
        } else {
            fired = true
        }
    }

    private func begin() -> Int {
        lastID += 1
        return lastID
    }

    /// A wait whose timer (or cancellation) won before this ran has already ended: never suspend for it, or the
    /// wait's task group would hold the loop until the next `fire`.
    private func suspend(_ id: Int) async {
        if fired || id <= settledID { return }
        await withCheckedContinuation { waiter = (id, $0) }
    }

    private func settle(_ id: Int) {
        fired = false
        settledID = max(settledID, id)
        if let waiter, waiter.id <= id {
            self.waiter = nil
            waiter.continuation.resume()
        }
    }

    /// Returns when fired (now or earlier), after `timeout`, or on cancellation.
    public nonisolated func wait(timeout: Duration) async {
        let id = await begin()
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.suspend(id) }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            await self.settle(id)
            group.cancelAll()
        }
    }
}
