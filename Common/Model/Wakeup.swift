/// A wake-up call for one waiting loop: fired any number of times, it wakes the loop once.
public actor Wakeup {
    private var fired = false
    private var continuation: CheckedContinuation<Void, Never>?

    public init() {}

    public func fire() {
        if let continuation {
            self.continuation = nil
            continuation.resume()
        } else {
            fired = true
        }
    }

    private func suspend() async {
        if fired { return }
        await withCheckedContinuation { continuation = $0 }
    }

    private func settle() {
        fired = false
        continuation?.resume()
        continuation = nil
    }

    /// Returns when fired (now or earlier), after `timeout`, or on cancellation.
    public nonisolated func wait(timeout: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.suspend() }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            await self.settle()
            group.cancelAll()
        }
    }
}

