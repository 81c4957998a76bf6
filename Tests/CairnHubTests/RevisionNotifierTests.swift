@testable import CairnHub
import CairnTestSupport
import Synchronization
import Testing

/// The long-poll's wait: woken by its cluster's change, by its timeout or by cancellation — never by another
/// cluster's change, and never missing a change made before it began waiting. Every wait here but the timeout's is
/// given ten minutes, so only what the test does can end it within the minute the test waits. (A minute, not
/// seconds: the whole suite starts at once on two cores, and its first seconds can starve any one test.)
@Suite struct RevisionNotifierTests {
    /// A wait running in a task, and whether it has returned.
    struct Waiting {
        final class Flag: Sendable { let value = Atomic(false) }
        let task: Task<Void, Never>
        let done = Flag()

        init(_ notifier: RevisionNotifier, _ cluster: String, id: Int, timeout: Duration = .seconds(600)) {
            task = Task { [done] in
                await notifier.wait(cluster, id: id, timeout: timeout)
                done.value.store(true, ordering: .releasing)
            }
        }

        var returned: Bool { done.value.load(ordering: .acquiring) }
    }

    @Test func `a change wakes its cluster's waiters and no other's`() async throws {
        let notifier = RevisionNotifier()
        let first = Waiting(notifier, "a", id: notifier.register("a"))
        let second = Waiting(notifier, "a", id: notifier.register("a"))
        let other = Waiting(notifier, "b", id: notifier.register("b"))
        try await Task.sleep(for: .milliseconds(100))
        notifier.publish("a")
        try await eventually("both waiters of a to return", timeout: 60) { first.returned && second.returned }
        try await Task.sleep(for: .milliseconds(200))
        #expect(!other.returned, "b's waiter was not woken by a's change")
        other.task.cancel()
        try await eventually("the cancelled wait to return", timeout: 60) { other.returned }
    }

    @Test func `a change between registering and waiting is not missed`() async throws {
        let notifier = RevisionNotifier()
        let id = notifier.register("a")
        notifier.publish("a")
        let waiting = Waiting(notifier, "a", id: id)
        try await eventually("the wait to return at once", timeout: 60) { waiting.returned }
    }

    @Test func `a wait ends at its timeout`() async throws {
        let notifier = RevisionNotifier()
        let waiting = Waiting(notifier, "a", id: notifier.register("a"), timeout: .milliseconds(50))
        try await eventually("the wait to time out", timeout: 60) { waiting.returned }
    }

    @Test func `a cancelled waiter returns, and one cancelled before it waits does not wait`() async throws {
        let notifier = RevisionNotifier()
        let id = notifier.register("a")
        let waiting = Waiting(notifier, "a", id: id)
        try await Task.sleep(for: .milliseconds(100))
        #expect(!waiting.returned)
        notifier.cancel("a", id: id)
        try await eventually("the cancelled wait to return", timeout: 60) { waiting.returned }

        let early = notifier.register("a")
        notifier.cancel("a", id: early)
        let late = Waiting(notifier, "a", id: early)
        try await eventually("a wait on a cancelled waiter to return at once", timeout: 60) { late.returned }
    }
}
