import Synchronization

/// Counts how clusters' leases were renewed: heartbeats received, and polls that renewed a lease in a heartbeat's
/// stead (`HeartbeatSkipping`).
public final class LeaseCounters: Sendable {
    private let counts = Mutex<(heartbeats: Int, polls: Int)>((0, 0))
    public init() {}

    public var heartbeats: Int { counts.withLock { $0.heartbeats } }
    public var polls: Int { counts.withLock { $0.polls } }

    func recordHeartbeat() { counts.withLock { $0.heartbeats += 1 } }
    func recordPoll() { counts.withLock { $0.polls += 1 } }
}
