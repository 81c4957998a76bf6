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

    /// Wakes every waiter of `cluster`; one registered but not yet waiting returns at once when it waits.
    public func publish(_ cluster: String) {
        let woken = state.withLock { state -> [Waiter] in
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
