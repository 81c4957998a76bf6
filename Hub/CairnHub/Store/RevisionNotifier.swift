import NIOCore
import NIOPosix
import Synchronization

/// Wakes long-polls when a cluster's revision moves. A waiter registers before it reads the revision, so a
/// change committed between the read and the wait is never missed.
///
/// A hub holds a poll for nearly every site at every moment, so a held poll costs what it must and no more: an entry
/// here and a timer on an event loop — no task of its own, no actor to hop to. (Two child tasks and a Dispatch timer
/// each, as it was, held ~4 KiB per idle site; see BENCHMARKS.md.)
public final class RevisionNotifier: Sendable {
    private struct Waiter {
        var fired = false
        var continuation: CheckedContinuation<Void, Never>?
        var timer: Scheduled<Void>?
    }

    private struct State {
        var waiters: [String: [Int: Waiter]] = [:]
        var nextID = 0
        /// Clusters' revisions as last read, each dropped when a change to its cluster is published.
        var revisions: [String: Int64] = [:]
        /// Changes published so far, to any cluster: a revision read before one may already be old.
        var published: UInt64 = 0
    }

    private let state = Mutex(State())
    private let timers: any EventLoopGroup

    /// `timers`: where the waits' timeouts run.
    public init(timers: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.timers = timers
    }

    public func register(_ cluster: String) -> Int {
        state.withLock { state in
            state.nextID += 1
            state.waiters[cluster, default: [:]][state.nextID] = Waiter()
            return state.nextID
        }
    }

    /// The revision of `cluster` remembered, if no change to it was published since it was read; else nil, and what
    /// to hand `remember` with the revision read now.
    ///
    /// Every poll reads its cluster's revision, twice when held, and a hub of 10,000 idle sites answers hundreds of
    /// polls a second: read from the database, each was a read transaction on the event loop — a sixth of an idle
    /// hub's CPU. It moves only when a write bumps it, and every such write publishes its cluster once committed
    /// (`SQLiteHubStore`), which forgets it here; `StoreTests` checks a poll never sees an old one.
    public func rememberedRevision(_ cluster: String) -> (revision: Int64?, readAt: UInt64) {
        state.withLock { ($0.revisions[cluster], $0.published) }
    }

    /// Remembers `revision`, read from the database after `rememberedRevision` answered `readAt` — unless a change was
    /// published since, which the read may have missed.
    public func remember(_ cluster: String, revision: Int64, readAt: UInt64) {
        state.withLock { state in
            if state.published == readAt { state.revisions[cluster] = revision }
        }
    }

    /// Wakes every waiter of `cluster`; one registered but not yet waiting returns at once when it waits. Called once
    /// a change to the cluster is committed: its remembered revision is forgotten too.
    public func publish(_ cluster: String) {
        let woken = state.withLock { state -> [Waiter] in
            state.published &+= 1
            state.revisions[cluster] = nil
            guard var waiters = state.waiters[cluster] else { return [] }
            var woken = [Waiter]()
            for (id, waiter) in waiters {
                if waiter.continuation != nil {
                    woken.append(waiter)
                    waiters[id] = nil
                } else {
                    waiters[id]?.fired = true
                }
            }
            state.waiters[cluster] = waiters.isEmpty ? nil : waiters
            return woken
        }
        for waiter in woken { Self.end(waiter) }
    }

    /// Waits for a publish after `register`, the timeout, or cancellation, whichever comes first; the waiter is gone
    /// when it returns.
    public func wait(_ cluster: String, id: Int, timeout: Duration) async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let waiting = state.withLock { state -> Bool in
                    guard let waiter = state.waiters[cluster]?[id], !waiter.fired else { return false }
                    state.waiters[cluster]?[id]?.continuation = continuation
                    return true
                }
                guard waiting else {
                    cancel(cluster, id: id)
                    continuation.resume()
                    return
                }
                let (seconds, attoseconds) = timeout.components
                let timer = timers.next().scheduleTask(in: .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)) {
                    self.cancel(cluster, id: id)
                }
                // Published, timed out or cancelled meanwhile: the timer has nothing left to end.
                let kept = state.withLock { state -> Bool in
                    guard state.waiters[cluster]?[id] != nil else { return false }
                    state.waiters[cluster]?[id]?.timer = timer
                    return true
                }
                if !kept { timer.cancel() }
            }
        } onCancel: {
            cancel(cluster, id: id)
        }
    }

    /// Ends the waiter: it returns if waiting, and is forgotten.
    public func cancel(_ cluster: String, id: Int) {
        let waiter = state.withLock { state -> Waiter? in
            let waiter = state.waiters[cluster]?.removeValue(forKey: id)
            if state.waiters[cluster]?.isEmpty == true { state.waiters[cluster] = nil }
            return waiter
        }
        if let waiter { Self.end(waiter) }
    }

    private static func end(_ waiter: Waiter) {
        waiter.timer?.cancel()
        waiter.continuation?.resume()
    }
}
