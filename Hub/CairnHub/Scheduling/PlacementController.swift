import CairnCommon
import Foundation
import Logging
import ServiceLifecycle

/// Keeps every placement's decisions current: recomputed whenever a cluster's labels, claims, taints, enrolment
/// or availability change, or a placement changes (each fires `signal`), and periodically for time-based rules
/// (tolerationSeconds, evictUnreachableAfter). Changes are stored with an event and announced on `decided`.
public struct PlacementController: Service {
    let store: any HubStore
    let signal: Wakeup
    let decided: Wakeup
    let interval: Double
    let logger: Logger

    public init(store: any HubStore, signal: Wakeup, decided: Wakeup, interval: Double = 5, logger: Logger) {
        self.store = store
        self.signal = signal
        self.decided = decided
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        await ControlLoop.run(name: "placement", signal: signal, interval: interval, logger: logger) {
            if try await reconcile(now: Date()) { await decided.fire() }
        }
    }

    /// One pass over every placement; true when any decision changed.
    public func reconcile(now: Date) async throws -> Bool {
        // With no placement there is nothing to decide: no need to read every cluster.
        let placements = try await store.placements()
        guard !placements.isEmpty else { return false }
        let clusters = try await store.clusters()
        var load = [String: Int]()
        for placement in placements {
            for decision in placement.status?.decisions ?? [] { load[decision.clusterName, default: 0] += 1 }
        }
        var changed = false
        for placement in placements {
            let previous = Set((placement.status?.decisions ?? []).map(\.clusterName))
            let outcome = PlacementScheduler.decide(placement, clusters: clusters, previous: previous, load: load, now: now)
            let chosen = Set(outcome.decisions.map(\.clusterName))
            for name in previous.subtracting(chosen) { load[name, default: 1] -= 1 }
            for name in chosen.subtracting(previous) { load[name, default: 0] += 1 }
            let status = Placement.Status(numberOfSelectedClusters: outcome.decisions.count, decisions: outcome.decisions, conditions: [outcome.condition])
            if try await store.setDecisions(placement: placement.name, status: status, now: now) {
                changed = true
                logger.info("placement decisions changed", metadata: ["placement.name": .string(placement.name), "placement.clusters": .string(chosen.sorted().joined(separator: ","))])
            }
        }
        return changed
    }
}
