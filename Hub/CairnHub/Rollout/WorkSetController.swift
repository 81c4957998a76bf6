import CairnCommon
import Foundation
import Logging
import ServiceLifecycle

/// Turns each WorkSet into one ManifestWork per chosen cluster and rolls changes out by its strategy:
/// all at once, or progressively (at most maxConcurrency in flight, each soaking minSuccessTime, failing after
/// progressDeadline, pausing or rolling back past maxFailures). When a decision moves, the new cluster gets the
/// work first; the old copy goes only once the new ones are Available, or after the relocation deadline.
public final class WorkSetController: Service, @unchecked Sendable {
    static let label = "cairn.io/workset"
    static let revisionAnnotation = "cairn.io/workset-revision"
    static let appliedAnnotation = "cairn.io/applied-at"
    static let writesPerTransaction = 100

    let store: any HubStore
    let signal: Wakeup
    let interval: Double
    let logger: Logger
    /// When a cluster left a WorkSet's decisions (in memory: after a hub restart the relocation deadline starts over).
    private var leftAt: [String: Date] = [:]
    /// When this controller first saw a cluster Available at a revision: the soak is measured from there, since
    /// an update that keeps a site available never moves the condition's own transition time.
    private var availableSince: [String: Date] = [:]

    public init(store: any HubStore, signal: Wakeup, interval: Double = 1, logger: Logger) {
        self.store = store
        self.signal = signal
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        await ControlLoop.run(name: "workset", signal: signal, interval: interval, logger: logger) {
            try await self.reconcile(now: Date())
        }
    }

    /// One pass over every WorkSet (driven by a single loop).
    public func reconcile(now: Date) async throws {
        // Status reports wake this loop; with no WorkSet there is nothing to read every cluster for.
        let workSets = try await store.workSets()
        guard !workSets.isEmpty else { return }
        let clusters = Dictionary(try await store.clusters().map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        for workSet in workSets {
            try await reconcile(workSet, clusters: clusters, now: now)
        }
    }

    func reconcile(_ workSet: WorkSet, clusters: [String: ManagedCluster], now: Date) async throws {
        let reference = workSet.spec.placementRefs[0]
        let strategy = reference.rolloutStrategy
        let progressive = strategy.map { $0.type != "All" } ?? false
        let options = strategy?.progressive
        let minSuccess = try options?.minSuccessTime.map { try Durations.seconds($0, field: "minSuccessTime") } ?? 0
        let deadline = try options?.progressDeadline.map { try Durations.seconds($0, field: "progressDeadline") }
        let relocationDeadline = try workSet.spec.relocationDeadline.map { try Durations.seconds($0, field: "relocationDeadline") } ?? 600
        let placement = try await store.placement(named: reference.name)
        let decided = Set(placement?.status?.decisions.map(\.clusterName) ?? [])
        let existing = try await store.works(ofWorkSet: workSet.name)
        var status = workSet.status ?? WorkSet.Status()
        let generation = workSet.metadata.generation ?? 1
        if status.revision != generation {
            // A changed spec starts a new rollout (and ends a pause or a rollback).
            status.revision = generation
            status.phase = "Progressing"
        }
        // Rolled back: every cluster returns to the last revision that succeeded everywhere.
        let target = status.phase == "RolledBack" ? (status.lastSucceededRevision ?? generation) : generation

        // Where each chosen cluster stands.
        var states = [String: WorkSet.ClusterState]()
        for name in decided.sorted() {
            states[name] = state(of: existing[name], cluster: name, target: target, minSuccess: minSuccess, deadline: deadline, workSet: workSet.name, now: now)
        }
        // A cluster newly chosen (or one that lost its copy) reopens a finished rollout.
        if status.phase == "Succeeded", states.values.contains(where: { $0.state == "ToApply" }) {
            status.phase = "Progressing"
        }
        let failures = states.values.filter { $0.state == "Failed" }.count
        let allowedFailures = options?.maxFailures?.resolve(total: decided.count) ?? 0
        if failures > allowedFailures && status.phase == "Progressing" {
            if workSet.spec.onFailure == "Rollback", let good = status.lastSucceededRevision, good != target {
                status.phase = "RolledBack"
                try await event(workSet, "RolledBack", "\(failures) cluster(s) failed revision \(target) (at most \(allowedFailures) allowed); returning every cluster to revision \(good)", now)
                return try await reconcile(WorkSet(metadata: workSet.metadata, spec: workSet.spec, status: status), clusters: clusters, now: now)
            }
            status.phase = "Paused"
            try await event(workSet, "RolloutPaused", "\(failures) cluster(s) failed revision \(target); at most \(allowedFailures) allowed", now)
        }

        // Apply to those whose turn it is.
        if status.phase == "Progressing" || status.phase == "RolledBack" {
            let waiting = states.values.filter { $0.state == "ToApply" }.map(\.name).sorted()
            var budget = waiting.count
            var eligible = waiting
            if strategy?.type == "ProgressivePerGroup", status.phase != "RolledBack", let placement {
                // One decision group at a time: the next group starts when every cluster of the earlier ones succeeded.
                let group = { (name: String) in clusters[name].map(placement.groupIndex(of:)) ?? Int.max }
                let current = states.values.filter { $0.state != "Succeeded" }.map { group($0.name) }.min() ?? 0
                eligible = waiting.filter { group($0) == current }
                budget = eligible.count
            } else if progressive && status.phase != "RolledBack" {
                let inFlight = states.values.filter { $0.state == "Progressing" }.count
                budget = max(0, (options?.maxConcurrency?.resolve(total: decided.count) ?? decided.count) - inFlight)
            }
            let spec = try await store.workSetSpec(workSet.name, generation: target) ?? workSet.spec
            var writes = [WorkWrite]()
            for name in eligible.prefix(budget) {
                guard let cluster = clusters[name] else { continue }
                do {
                    let work = try render(workSet.name, spec: spec, revision: target, for: cluster, now: now)
                    let applied = Self.event(workSet, "Applied", "revision \(target) applied to \(name)", now)
                    writes.append(WorkWrite(work: work, cluster: name, events: [applied]))
                } catch let error as CairnError {
                    states[name] = WorkSet.ClusterState(name: name, state: "Failed", revision: target, message: error.message)
                }
            }
            // A batch of clusters per transaction, not one each: a rollout to thousands of sites would otherwise
            // spend most of its time waiting for the writer, once per work and once more per event.
            for start in stride(from: 0, to: writes.count, by: Self.writesPerTransaction) {
                let batch = Array(writes[start..<min(start + Self.writesPerTransaction, writes.count)])
                for (write, outcome) in zip(batch, try await store.applyWorks(batch, now: now)) {
                    switch outcome {
                    case .success:
                        states[write.cluster] = WorkSet.ClusterState(name: write.cluster, state: "Progressing", revision: target)
                        for event in write.events { log(event, of: workSet) }
                    case .failure(let error as CairnError):
                        states[write.cluster] = WorkSet.ClusterState(name: write.cluster, state: "Failed", revision: target, message: error.message)
                    case .failure(let error):
                        throw error
                    }
                }
            }
        }

        // Make before break: an old copy goes once every chosen cluster reports Available, or after the deadline.
        var removing = [WorkSet.ClusterState]()
        // With no cluster chosen at all there is no replacement: old copies wait for the deadline.
        let replacementsAvailable = !decided.isEmpty && decided.allSatisfy { name in existing[name].map { Self.available($0) } ?? false }
        for (name, work) in existing where !decided.contains(name) && work.metadata.deletionTimestamp == nil {
            let key = "\(workSet.name)/\(name)"
            let since = leftAt[key] ?? now
            leftAt[key] = since
            if replacementsAvailable || now.timeIntervalSince(since) >= relocationDeadline {
                _ = try await store.deleteWork(cluster: name, name: workSet.name, now: now)
                leftAt[key] = nil
                let why = replacementsAvailable
                    ? "after \(decided.sorted().joined(separator: ", ")) reported Available"
                    : "after the relocation deadline, without every replacement Available"
                try await event(workSet, "Removed", "removed from \(name) \(why)", now)
            } else {
                removing.append(WorkSet.ClusterState(name: name, state: "Removing", revision: Self.revision(of: work), message: "waiting for the new copies to be Available"))
            }
        }

        // Status.
        var summary = WorkSet.Summary()
        summary.total = decided.count
        for name in decided {
            guard let work = existing[name] else { continue }
            if work.status?.conditions.isTrue(ConditionType.applied) == true { summary.applied += 1 }
            if Self.available(work) { summary.available += 1 }
            if work.status?.conditions.isTrue(ConditionType.degraded) == true { summary.degraded += 1 }
            if Self.revision(of: work) == target { summary.updated += 1 }
        }
        status.summary = summary
        status.clusters = states.values.sorted { $0.name < $1.name } + removing
        if !decided.isEmpty, states.values.allSatisfy({ $0.state == "Succeeded" }) {
            if status.phase == "Progressing" {
                status.phase = "Succeeded"
                try await event(workSet, "RolloutSucceeded", "revision \(target) succeeded on \(decided.count) cluster(s)", now)
            }
            if status.phase != "RolledBack" { status.lastSucceededRevision = target }
        }
        status.conditions = [
            Condition(type: "PlacementVerified", status: decided.isEmpty ? Condition.false : Condition.true, reason: decided.isEmpty ? "NoDecisions" : "AsExpected", message: decided.isEmpty ? "placement \(reference.name) has chosen no cluster" : "", lastTransitionTime: now)
        ]
        let final = Self.keepTimes(status, workSet.status)
        if final != workSet.status { try await store.setWorkSetStatus(workSet.name, status: final) }
    }

    func state(of work: ManifestWork?, cluster: String, target: Int64, minSuccess: Double, deadline: Double?, workSet: String, now: Date) -> WorkSet.ClusterState {
        guard let work, work.metadata.deletionTimestamp == nil, Self.revision(of: work) == target else {
            return WorkSet.ClusterState(name: cluster, state: "ToApply", revision: work.flatMap(Self.revision(of:)))
        }
        let conditions = work.status?.conditions ?? []
        let current = conditions.allSatisfy { ($0.observedGeneration ?? work.generation) >= work.generation }
        if current, conditions.isTrue(ConditionType.degraded) {
            return WorkSet.ClusterState(name: cluster, state: "Failed", revision: target, message: conditions[type: ConditionType.degraded]?.message)
        }
        if current, let available = conditions[type: ConditionType.available], available.status == Condition.true {
            let key = "\(workSet)/\(cluster)/\(target)/\(work.generation)"
            let since = availableSince[key] ?? now
            availableSince[key] = since
            if now.timeIntervalSince(since) >= minSuccess {
                return WorkSet.ClusterState(name: cluster, state: "Succeeded", revision: target)
            }
            return WorkSet.ClusterState(name: cluster, state: "Progressing", revision: target, message: "soaking")
        }
        if let deadline, let applied = work.metadata.annotations?[Self.appliedAnnotation].flatMap(RFC3339.date(from:)),
            now.timeIntervalSince(applied) > deadline
        {
            return WorkSet.ClusterState(name: cluster, state: "Failed", revision: target, message: "not Available within the progress deadline")
        }
        return WorkSet.ClusterState(name: cluster, state: "Progressing", revision: target)
    }

    func render(_ name: String, spec: WorkSet.Spec, revision: Int64, for cluster: ManagedCluster, now: Date) throws -> ManifestWork {
        var values = [String: String]()
        for override in spec.overrides ?? [] where override.clusterSelector.matches(cluster.metadata.labels ?? [:]) {
            values.merge(override.values) { _, new in new }
        }
        let template = WorkTemplate(
            clusterName: cluster.name, labels: cluster.metadata.labels ?? [:],
            claims: Dictionary(cluster.status.clusterClaims.map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first }),
            values: values)
        var metadata = ObjectMeta(name: name, namespace: cluster.name, labels: [Self.label: name])
        metadata.annotations = [Self.revisionAnnotation: String(revision), Self.appliedAnnotation: RFC3339.string(from: now)]
        let work = ManifestWork(metadata: metadata, spec: try template.render(spec.manifestWorkTemplate))
        try work.validate(cluster: cluster.name)
        return work
    }

    func event(_ workSet: WorkSet, _ reason: String, _ message: String, _ now: Date) async throws {
        let event = Self.event(workSet, reason, message, now)
        try await store.recordEvent(event)
        log(event, of: workSet)
    }

    static func event(_ workSet: WorkSet, _ reason: String, _ message: String, _ now: Date) -> Event {
        Event(time: now, object: "WorkSet/\(workSet.name)", reason: reason, message: message)
    }

    func log(_ event: Event, of workSet: WorkSet) {
        logger.info("workset rollout", metadata: ["workset.name": .string(workSet.name), "reason": .string(event.reason), "message": .string(event.message)])
    }

    static func revision(of work: ManifestWork) -> Int64? {
        work.metadata.annotations?[revisionAnnotation].flatMap { Int64($0) }
    }

    static func available(_ work: ManifestWork) -> Bool {
        guard let condition = work.status?.conditions[type: ConditionType.available] else { return false }
        return condition.status == Condition.true && (condition.observedGeneration ?? work.generation) >= work.generation
    }

    /// Keeps condition transition times stable so that an unchanged rollout writes nothing.
    static func keepTimes(_ status: WorkSet.Status, _ old: WorkSet.Status?) -> WorkSet.Status {
        var status = status
        var conditions = old?.conditions ?? []
        for condition in status.conditions { conditions.set(condition) }
        status.conditions = conditions
        return status
    }
}
