import Foundation
import Synchronization

/// When each simulated site applied a work's generation, removed a work, and when the hub acknowledged the
/// status saying so — stamped at the moment it happened, so waiting for an event never adds to its latency.
final class Timeline: Sendable {
    enum Kind: Sendable, Hashable {
        /// The site applied this generation to its simulated cluster.
        case applied
        /// The hub committed the site's status report saying this generation is Applied and Available.
        case acknowledged
        /// The site removed the work's objects.
        case removed
        /// The hub committed the site's report that the work is gone (and dropped the work).
        case removalAcknowledged
    }

    struct Key: Sendable, Hashable {
        var cluster: String
        var work: String
        var generation: Int64
        var kind: Kind
    }

    private struct Latest: Hashable {
        var cluster: String
        var work: String
        var kind: Kind
    }

    private typealias Waiter = (continuation: CheckedContinuation<ContinuousClock.Instant?, Never>, timer: Task<Void, Never>)

    private struct State {
        var events: [Key: ContinuousClock.Instant] = [:]
        /// The newest generation each cluster has for a work and kind of event, and when.
        var latest: [Latest: (generation: Int64, instant: ContinuousClock.Instant)] = [:]
        var waiters: [Key: [Int: Waiter]] = [:]
        var nextWaiter = 0
    }

    private let state = Mutex(State())

    func record(_ key: Key, at instant: ContinuousClock.Instant = .now) {
        let waiting = state.withLock { state -> [Waiter] in
            guard state.events[key] == nil else { return [] }
            state.events[key] = instant
            let latest = Latest(cluster: key.cluster, work: key.work, kind: key.kind)
            if (state.latest[latest]?.generation ?? .min) < key.generation { state.latest[latest] = (key.generation, instant) }
            return state.waiters.removeValue(forKey: key).map { Array($0.values) } ?? []
        }
        for waiter in waiting {
            waiter.timer.cancel()
            waiter.continuation.resume(returning: instant)
        }
    }

    func instant(_ key: Key) -> ContinuousClock.Instant? { state.withLock { $0.events[key] } }

    /// The event's instant once it happens, or nil after `timeout` seconds (the timer goes when the event comes).
    func wait(for key: Key, timeout: Double) async -> ContinuousClock.Instant? {
        await withCheckedContinuation { continuation in
            let registered = state.withLock { state -> Bool in
                if state.events[key] != nil { return false }
                state.nextWaiter += 1
                let id = state.nextWaiter
                let timer = Task {
                    try? await Task.sleep(for: .milliseconds(Int64(timeout * 1000)))
                    guard !Task.isCancelled else { return }
                    let expired = self.state.withLock { $0.waiters[key]?.removeValue(forKey: id) }
                    expired?.continuation.resume(returning: nil)
                }
                state.waiters[key, default: [:]][id] = (continuation, timer)
                return true
            }
            if !registered { continuation.resume(returning: instant(key)) }
        }
    }

    /// How many of `clusters` have had this event for a generation of the work newer than `newerThan` gives for
    /// the cluster (any generation when it gives none), and the latest instant among them.
    func count(clusters: [String], work: String, kind: Kind, newerThan: [String: Int64] = [:]) -> (count: Int, last: ContinuousClock.Instant?) {
        state.withLock { state in
            var count = 0
            var last: ContinuousClock.Instant?
            for cluster in clusters {
                if let latest = state.latest[Latest(cluster: cluster, work: work, kind: kind)], latest.generation > newerThan[cluster] ?? .min {
                    count += 1
                    last = max(last ?? latest.instant, latest.instant)
                }
            }
            return (count, last)
        }
    }

    /// The newest generation each of `clusters` has had this event for.
    func generations(clusters: [String], work: String, kind: Kind) -> [String: Int64] {
        state.withLock { state in
            var generations = [String: Int64]()
            for cluster in clusters { generations[cluster] = state.latest[Latest(cluster: cluster, work: work, kind: kind)]?.generation }
            return generations
        }
    }
}
