import Foundation
import Synchronization

/// How often agents are asked to heartbeat, stretched as the fleet grows so the hub takes at most
/// `heartbeatsPerSecond` of them, and how long a cluster may stay silent — stretched by the same factor, so a lease
/// always spans the same number of heartbeats.
///
/// With the defaults (10 s, 40 s lease, 250 a second) nothing changes up to 2,500 clusters; at 10,000 agents beat
/// every 40 s and a silent cluster is noticed within 160 s. Heartbeats that change only a lease's time are cheap for
/// the store (written together once a second), but each is still a TLS-framed HTTP/2 request to read, authenticate
/// and answer: at 10,000 clusters every 10 s they alone took most of a core.
///
/// The stretch only grows while the hub runs: agents take a new interval with their next heartbeat, so a lease
/// shortened at once could expire clusters still waiting out the longer interval they were given.
public final class HeartbeatPacing: Sendable {
    let interval: Double
    let leaseTimeout: Double
    let heartbeatsPerSecond: Double
    private let stretch = Mutex<Double>(1)

    public init(interval: Double, leaseTimeout: Double, heartbeatsPerSecond: Double) {
        self.interval = interval
        self.leaseTimeout = leaseTimeout
        self.heartbeatsPerSecond = heartbeatsPerSecond
    }

    /// Takes the number of clusters that heartbeat; returns the interval now asked of them.
    @discardableResult
    public func update(clusters: Int) -> Double {
        let wanted = Double(clusters) / heartbeatsPerSecond
        return stretch.withLock { stretch in
            // Stretched to whole seconds: agents see a steady number, not one that drifts with every enrolment.
            if interval > 0, wanted > interval * stretch {
                stretch = wanted.rounded(.up) / interval
            }
            return interval * stretch
        }
    }

    /// The interval agents are asked to heartbeat at.
    public var currentInterval: Double { interval * stretch.withLock { $0 } }
    /// How long an accepted cluster may stay silent before it is marked Available=Unknown.
    public var currentLeaseTimeout: Double { leaseTimeout * stretch.withLock { $0 } }
}
