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

    public init(store: any HubStore, configuration: HubConfiguration, rescheduled: Wakeup, logger: Logger) {
        self.store = store
        self.configuration = configuration
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
                        let silent = try await store.markSilentClusters(
                            before: now.addingTimeInterval(-configuration.leaseTimeout), now: now)
                        for name in silent {
                            logger.warning("cluster lease expired", metadata: ["cluster.name": .string(name)])
                        }
                        if !silent.isEmpty { await rescheduled.fire() }
                        if now.timeIntervalSince(lastCompaction) > 3600 {
                            _ = try await store.compactTombstones(before: now.addingTimeInterval(-configuration.tombstoneRetention))
                            lastCompaction = now
                        }
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
