import CairnCommon
import Foundation
import Logging
import ServiceLifecycle

/// Marks clusters whose heartbeats stopped as Available=Unknown, and compacts old deletion tombstones.
public struct LeaseMonitor: Service {
    let store: any HubStore
    let configuration: HubConfiguration
    let logger: Logger
    let rescheduled: Wakeup
    let pacing: HeartbeatPacing

    public init(store: any HubStore, configuration: HubConfiguration, pacing: HeartbeatPacing, rescheduled: Wakeup, logger: Logger) {
        self.store = store
        self.configuration = configuration
        self.pacing = pacing
        self.rescheduled = rescheduled
        self.logger = logger
    }

    public func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                var lastCompaction = Date.distantPast
                while true {
                    let now = Date()
                    do {
                        let before = pacing.currentInterval
                        let interval = pacing.update(clusters: try await store.acceptedClusterCount())
                        if interval != before {
                            logger.notice(
                                "heartbeat interval stretched with the fleet",
                                metadata: ["heartbeat.interval": .stringConvertible(interval), "lease.timeout": .stringConvertible(pacing.currentLeaseTimeout)])
                        }
                        let silent = try await store.markSilentClusters(
                            before: now.addingTimeInterval(-pacing.currentLeaseTimeout), now: now)
                        for name in silent {
                            logger.warning("cluster lease expired", metadata: ["cluster.name": .string(name)])
                        }
                        if !silent.isEmpty { await rescheduled.fire() }
                        if now.timeIntervalSince(lastCompaction) > 3600 {
                            _ = try await store.compactTombstones(before: now.addingTimeInterval(-configuration.tombstoneRetention))
                            lastCompaction = now
                        }
                    } catch is CancellationError {
                        // The hub is stopping: the check it interrupted did not fail.
                        throw CancellationError()
                    } catch {
                        logger.error("lease check failed", metadata: ["error.message": .string("\(error)")])
                    }
                    try await Task.sleep(for: .milliseconds(Int64(configuration.leaseCheckInterval * 1000)))
                }
            }
        } catch is CancellationError {
            return
        }
    }
}
