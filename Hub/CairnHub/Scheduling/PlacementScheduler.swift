import CairnCommon
import Foundation

/// Chooses clusters for a placement: filter by predicates and taints, score with the prioritizers, take the best.
/// Pure: the same clusters, previous decisions and load give the same answer.
public enum PlacementScheduler {
    public struct Outcome: Sendable, Equatable {
        public var decisions: [Placement.Decision]
        public var condition: Condition
    }

    /// - Parameters:
    ///   - previous: the clusters this placement chose last time (for Steady and NoSelectIfNew).
    ///   - load: how many decisions each cluster holds across all placements (for Balance).
    public static func decide(_ placement: Placement, clusters: [ManagedCluster], previous: Set<String>, load: [String: Int], now: Date) -> Outcome {
        let spec = placement.spec
        var candidates = [ManagedCluster]()
        var excludedByTaint = 0
        for cluster in clusters where cluster.status.enrolment == .accepted {
            guard matches(spec.predicates, cluster) else { continue }
            guard admits(spec, cluster, wasChosen: previous.contains(cluster.name), now: now) else {
                excludedByTaint += 1
                continue
            }
            candidates.append(cluster)
        }
        let configurations = spec.prioritizerPolicy?.configurations
            ?? [Placement.PrioritizerConfig(builtIn: "Balance", weight: 1), Placement.PrioritizerConfig(builtIn: "Steady", weight: 1)]
        var scores = [String: Int]()
        var parts = [String: [String]]()
        for configuration in configurations {
            let weight = configuration.weight ?? 1
            guard weight != 0, let name = configuration.scoreCoordinate.builtIn else { continue }
            let raw = score(name, candidates, previous: previous, load: load)
            for cluster in candidates {
                let value = raw[cluster.name] ?? 0
                scores[cluster.name, default: 0] += weight * value
                parts[cluster.name, default: []].append("\(name)=\(value)")
            }
        }
        let ranked = candidates.sorted { (scores[$0.name] ?? 0, $1.name) > (scores[$1.name] ?? 0, $0.name) }
        let wanted = spec.numberOfClusters ?? ranked.count
        let chosen = ranked.prefix(wanted).map { cluster in
            Placement.Decision(
                clusterName: cluster.name,
                reason: "selected: \(parts[cluster.name, default: []].joined(separator: ", "))\(previous.contains(cluster.name) ? ", already chosen" : "")",
                score: scores[cluster.name] ?? 0)
        }
        let condition: Condition
        if chosen.count == wanted && (wanted > 0 || spec.numberOfClusters == 0) {
            condition = Condition(type: "PlacementSatisfied", status: Condition.true, reason: "AllDecisionsScheduled", message: "\(chosen.count) of \(wanted) clusters chosen", lastTransitionTime: now)
        } else {
            var message = "\(chosen.count) of \(spec.numberOfClusters.map(String.init) ?? "any") clusters chosen"
            if excludedByTaint > 0 { message += "; \(excludedByTaint) matching cluster(s) excluded by taints" }
            condition = Condition(type: "PlacementSatisfied", status: Condition.false, reason: "NotAllDecisionsScheduled", message: message, lastTransitionTime: now)
        }
        return Outcome(decisions: chosen, condition: condition)
    }

    static func matches(_ predicates: [Placement.Predicate]?, _ cluster: ManagedCluster) -> Bool {
        guard let predicates, !predicates.isEmpty else { return true }
        let labels = cluster.metadata.labels ?? [:]
        let claims = Dictionary(cluster.status.clusterClaims.map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first })
        return predicates.contains { predicate in
            (predicate.requiredClusterSelector.labelSelector?.matches(labels) ?? true)
                && (predicate.requiredClusterSelector.claimSelector?.matches(claims) ?? true)
        }
    }

    /// The taints a cluster carries: the administrator's, plus the hub's own from its Available condition.
    public static func taints(of cluster: ManagedCluster) -> [Taint] {
        var taints = (cluster.spec.taints ?? []).filter { !$0.key.hasPrefix("cairn.io/") }
        if let available = cluster.status.conditions[type: ConditionType.available] {
            if available.status == Condition.unknown {
                taints.append(Taint(key: Taints.unreachable, value: nil, effect: Taints.noSelect, timeAdded: available.lastTransitionTime))
            } else if available.status == Condition.false {
                taints.append(Taint(key: Taints.unavailable, value: nil, effect: Taints.noSelect, timeAdded: available.lastTransitionTime))
            }
        }
        return taints
    }

    /// Whether every taint is tolerated (for as long as it says). Edge-first: `cairn.io/unreachable` is tolerated
    /// without end unless the placement sets `evictUnreachableAfter` — a partitioned site keeps its workloads.
    static func admits(_ spec: Placement.Spec, _ cluster: ManagedCluster, wasChosen: Bool, now: Date) -> Bool {
        for taint in taints(of: cluster) {
            if taint.effect == Taints.noSelectIfNew && wasChosen { continue }
            if taint.key == Taints.unreachable && !(spec.tolerations ?? []).contains(where: { $0.tolerates(taint) }) {
                guard let evict = spec.evictUnreachableAfter, let seconds = try? Durations.seconds(evict, field: "evictUnreachableAfter") else {
                    continue
                }
                if now.timeIntervalSince(taint.timeAdded ?? now) < seconds && wasChosen { continue }
                return false
            }
            let tolerated = (spec.tolerations ?? []).contains { toleration in
                guard toleration.tolerates(taint) else { return false }
                guard let limit = toleration.tolerationSeconds else { return true }
                return now.timeIntervalSince(taint.timeAdded ?? now) < Double(limit)
            }
            if !tolerated { return false }
        }
        return true
    }

    /// Scores from -100 to 100 per cluster for one built-in prioritizer.
    static func score(_ name: String, _ clusters: [ManagedCluster], previous: Set<String>, load: [String: Int]) -> [String: Int] {
        func normalise(_ values: [String: Double], higherIsBetter: Bool) -> [String: Int] {
            guard let low = values.values.min(), let high = values.values.max(), high > low else {
                return values.mapValues { _ in 0 }
            }
            return values.mapValues { value in
                let position = (value - low) / (high - low)
                return Int(((higherIsBetter ? position : 1 - position) * 200 - 100).rounded())
            }
        }
        switch name {
        case "Steady":
            return Dictionary(uniqueKeysWithValues: clusters.map { ($0.name, previous.contains($0.name) ? 100 : 0) })
        case "Balance":
            // A cluster's own decision for this placement is not held against it.
            return normalise(
                Dictionary(uniqueKeysWithValues: clusters.map { ($0.name, Double((load[$0.name] ?? 0) - (previous.contains($0.name) ? 1 : 0))) }),
                higherIsBetter: false)
        case "ResourceAllocatableCPU", "ResourceAllocatableMemory":
            let resource = name == "ResourceAllocatableCPU" ? "cpu" : "memory"
            return normalise(
                Dictionary(uniqueKeysWithValues: clusters.map { ($0.name, Quantity.parse($0.status.allocatable[resource] ?? "") ?? 0) }),
                higherIsBetter: true)
        default:
            return [:]
        }
    }
}
