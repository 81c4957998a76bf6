import CairnCommon
import CairnTestSupport
import Synchronization
import Testing

@Suite struct WakeupTests {
    @Test func `a fire before the wait wakes it once, and the next wait waits`() async throws {
        let wakeup = Wakeup()
        await wakeup.fire()
        await wakeup.fire()
        try await value(of: Task { await wakeup.wait(timeout: .seconds(3_600)) }, within: 60, "the wait fired before it began")
        // Two fires before one wait are one wake-up: the next wait is still waiting until a new fire.
        let ended = Mutex(false)
        let next = Task {
            await wakeup.wait(timeout: .seconds(3_600))
            ended.withLock { $0 = true }
        }
        try await Task.sleep(for: .milliseconds(200))
        #expect(!ended.withLock { $0 })
        await wakeup.fire()
        try await value(of: next, within: 60, "the next wait to wake")
    }

    @Test func `a fire wakes a loop that is waiting`() async throws {
        let wakeup = Wakeup()
        let waiting = Task { await wakeup.wait(timeout: .seconds(3_600)) }
        try await Task.sleep(for: .milliseconds(50))
        await wakeup.fire()
        try await value(of: waiting, within: 60, "the waiting loop to wake")
    }

    /// The wait's timer (or a cancellation) can win before the waiting half has even reached the actor; that half
    /// must then not suspend, or the wait never returns until somebody fires. The race needs a thread to be
    /// preempted at the wrong moment, so it is rare; waits that end at once are where it can happen, so many of
    /// them are made here.
    @Test func `waits that time out or are cancelled at once always return`() async throws {
        let wakeup = Wakeup()
        let loops = Task {
            for _ in 0..<500 { await wakeup.wait(timeout: .zero) }
            for _ in 0..<200 {
                let cancelled = Task { await wakeup.wait(timeout: .seconds(3_600)) }
                cancelled.cancel()
                await cancelled.value
            }
        }
        try await value(of: loops, within: 60, "700 waits that end at once")
    }
}
