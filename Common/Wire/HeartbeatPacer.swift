import Synchronization

/// An agent's heartbeat loop and its poll loop, paired: which heartbeats may be left out (`HeartbeatSkipping`) and
/// the wake-up that sends one at once when the hub asks for it on a poll's answer. The agent daemon and the bench's
/// simulated sites both hold one, so the four steps of the pairing are made in one place, never half.
public final class HeartbeatPacer: Sendable {
    private let skipping = Mutex(HeartbeatSkipping())
    private let wakeup = Wakeup()

    public init() {}

    /// A poll is being sent now: it renews the lease at a hub that says polls do.
    public func polling() {
        skipping.withLock { $0.polling(at: .now) }
    }

    /// A poll was answered. When the hub says that poll did not renew the lease, the next heartbeat goes now,
    /// whatever it carries.
    public func pollAnswered(heartbeatWanted: Bool) async {
        guard heartbeatWanted else { return }
        skipping.withLock { $0.mustSend() }
        await wakeup.fire()
    }

    /// A poll failed: until the next one is sent, only heartbeats renew the lease.
    public func pollFailed() {
        skipping.withLock { $0.pollFailed() }
    }

    /// Whether `heartbeat`, due now at `interval`, must be sent.
    public func shouldSend(_ heartbeat: Heartbeat, interval: Double) -> Bool {
        skipping.withLock { $0.shouldSend(heartbeat, interval: interval, now: .now) }
    }

    /// The hub accepted `heartbeat` and answered `answer`.
    public func sent(_ heartbeat: Heartbeat, answer: HeartbeatResponse) {
        skipping.withLock { $0.sent(heartbeat, answer: answer) }
    }

    /// A heartbeat failed: the next one is sent whatever it carries.
    public func heartbeatFailed() {
        skipping.withLock { $0.mustSend() }
    }

    /// Waits until the next heartbeat is due (`HeartbeatResponse.wait(for:)`), or the hub asked for one.
    public func waitForNext(interval: Double) async {
        await wakeup.wait(timeout: .seconds(HeartbeatResponse.wait(for: interval)))
    }
}
