import CairnCommon
import Foundation
import Logging

/// Brings the site to the cached desired state: applies in dependency order, deletes what left (in reverse
/// order, honouring Orphan and UIDs), reads status back and queues what changed in the outbox.
/// One pass at a time: it is driven by a single loop.
public final class Reconciler: @unchecked Sendable {
    let cache: AgentCache
    let adapter: any ClusterAdapter
    let logger: Logger
    /// The last apply failure per work and manifest, reported until an apply succeeds.
    private var failures: [String: [ManifestKey: AdapterError]] = [:]

    public init(cache: AgentCache, adapter: any ClusterAdapter, logger: Logger) {
        self.cache = cache
        self.adapter = adapter
        self.logger = logger
    }

    public struct Outcome: Sendable {
        /// Something is still progressing: worth looking again soon.
        public var progressing: Bool
        /// Statuses were queued for the hub.
        public var queuedStatus: Bool
        /// Some manifest failed to apply: worth retrying, with backoff, before the next resync.
        public var failing: Bool = false
        /// Every object the site holds for the agent now: what is worth watching.
        public var tracked: Set<ManifestKey> = []
    }

    /// One pass. `apply`: the works to (re)apply, or nil for all of them (resync, drift correction).
    @discardableResult
    public func reconcile(apply: Set<String>?) async throws -> Outcome {
        let works = try cache.works()
        var inventory = try cache.inventory()
        var desiredOwner = [ManifestKey: String]()
        for cached in works where !cached.deleting {
            for manifest in cached.work.spec.workload.manifests {
                if let key = ManifestKey(manifest: manifest) { desiredOwner[key] = cached.work.name }
            }
        }
        var outcome = Outcome(progressing: false, queuedStatus: false)
        let previous = try cache.latestStatuses()
        // While the brake holds deletions nothing leaves the site: deleting works keep their objects.
        let holding = try cache.deletionHold() != nil
        for cached in works {
            let work = cached.work
            if cached.deleting && holding { continue }
            if cached.deleting {
                try await remove(work: work, inventory: inventory[work.name] ?? [:], desiredOwner: desiredOwner)
                inventory[work.name] = nil
                outcome.queuedStatus = true
                continue
            }
            if apply == nil || apply!.contains(work.name) || inventory[work.name] == nil || failures[work.name] != nil {
                inventory[work.name] = try await applyWork(work, inventory: inventory[work.name] ?? [:], desiredOwner: desiredOwner, holding: holding)
            }
            let (status, progressing) = try await status(of: work, inventory: inventory[work.name] ?? [:], previous: previous[work.name])
            outcome.progressing = outcome.progressing || progressing
            outcome.failing = outcome.failing || failures[work.name] != nil
            let old = previous[work.name]
            if old == nil || old!.deleted || old!.observedGeneration != work.generation || !(old!.status.map { $0.sameState(as: status) } ?? false) {
                try cache.enqueue(WorkStatusUpdate(name: work.name, observedGeneration: work.generation, status: status))
                outcome.queuedStatus = true
            }
        }
        outcome.tracked = Set(inventory.values.flatMap(\.keys))
        return outcome
    }

    private func applyWork(
        _ work: ManifestWork, inventory: [ManifestKey: InventoryEntry], desiredOwner: [ManifestKey: String], holding: Bool
    ) async throws -> [ManifestKey: InventoryEntry] {
        let manifests = work.spec.workload.manifests.compactMap { manifest in ManifestKey(manifest: manifest).map { ($0, manifest) } }
        var applied = [InventoryEntry]()
        var workFailures = [ManifestKey: AdapterError]()
        var interrupted: (any Error)?
        // Intent first: an object new to the site is in the inventory (without its UID) before it is applied, so a
        // crash right after the site accepts it cannot leave it behind if the work is deleted meanwhile.
        let fresh = manifests.map(\.0).filter { inventory[$0] == nil && work.spec.config(for: $0)?.updateStrategy?.type != .readOnly }
        try cache.recordApplied(work: work.name, entries: fresh.map { InventoryEntry(key: $0, uid: nil) })
        var attempted = Set<ManifestKey>()
        for (key, manifest) in manifests.sorted(by: { $0.0 < $1.0 }) {
            let strategy = work.spec.config(for: key)?.updateStrategy ?? .default
            attempted.insert(key)
            do {
                let outcome = try await adapter.apply(manifest, key: key, strategy: strategy)
                if strategy.type != .readOnly { applied.append(InventoryEntry(key: key, uid: outcome.uid)) }
                if outcome.changed {
                    logger.debug("applied", metadata: ["work.name": .string(work.name), "object": .string(key.description)])
                }
            } catch let error as AdapterError where error.isSiteWide {
                // Its outcome is unknown: the intent stays.
                interrupted = error
                break
            } catch is CancellationError {
                interrupted = CancellationError()
                break
            } catch let error as AdapterError {
                workFailures[key] = error
            } catch {
                workFailures[key] = AdapterError(reason: "ApplyFailed", message: "\(error)")
            }
        }
        // What reached the site is recorded even when the site's API went away half-way, so nothing is orphaned;
        // intents for what was refused outright, or never tried, are dropped — those objects are not ours.
        try cache.recordApplied(work: work.name, entries: applied)
        try cache.forget(work: work.name, keys: fresh.filter { workFailures[$0] != nil || !attempted.contains($0) })
        if let interrupted { throw interrupted }
        failures[work.name] = workFailures.isEmpty ? nil : workFailures
        var result = inventory
        for entry in applied { result[entry.key] = entry }
        // Manifests that left the work go, in reverse dependency order — unless another work now holds them.
        let wanted = Set(manifests.map(\.0))
        // (Held by the brake, they stay, in the inventory, until released.)
        let leaving = holding ? [] : Array(result.keys.filter { !wanted.contains($0) }.sorted().reversed())
        var forgotten = [ManifestKey]()
        for key in leaving {
            if desiredOwner[key] == nil, work.spec.propagationPolicy != .orphan {
                _ = try await adapter.delete(key, uid: result[key]?.uid, propagation: work.spec.propagationPolicy)
            }
            forgotten.append(key)
            result[key] = nil
        }
        try cache.forget(work: work.name, keys: forgotten)
        return result
    }

    private func remove(work: ManifestWork, inventory: [ManifestKey: InventoryEntry], desiredOwner: [ManifestKey: String]) async throws {
        let policy = work.spec.propagationPolicy
        for key in inventory.keys.sorted().reversed() where desiredOwner[key] == nil && policy != .orphan {
            let outcome = try await adapter.delete(key, uid: inventory[key]?.uid, propagation: policy)
            if case .notOurs = outcome {
                logger.notice("left an object someone else recreated", metadata: ["work.name": .string(work.name), "object": .string(key.description)])
            }
        }
        failures[work.name] = nil
        try cache.finishDeletion(work: work.name, generation: work.generation)
        logger.info("work removed from the site", metadata: ["work.name": .string(work.name), "work.propagation": .string(policy.rawValue)])
    }

    private func status(of work: ManifestWork, inventory: [ManifestKey: InventoryEntry], previous: WorkStatusUpdate?) async throws -> (ManifestWork.Status, Bool) {
        let generation = work.generation
        let now = Date()
        let oldStatus = previous?.status
        var manifests = [ManifestCondition]()
        var progressing = false
        var notApplied = [String]()
        var notAvailable = [String]()
        for (ordinal, manifest) in work.spec.workload.manifests.enumerated() {
            guard let key = ManifestKey(manifest: manifest) else { continue }
            let config = work.spec.config(for: key)
            var conditions = oldStatus?.resourceStatus.manifests.first { $0.resourceMeta.ordinal == ordinal }?.conditions ?? []
            let live = try await adapter.get(key)
            if let failure = failures[work.name]?[key] {
                conditions.set(Condition(type: ConditionType.applied, status: Condition.false, reason: failure.reason, message: failure.message, lastTransitionTime: now, observedGeneration: generation))
                notApplied.append(key.description)
            } else if inventory[key] != nil || (config?.updateStrategy?.type == .readOnly && live != nil) {
                conditions.set(Condition(type: ConditionType.applied, status: Condition.true, reason: "AppliedManifestComplete", message: "Apply manifest complete", lastTransitionTime: now, observedGeneration: generation))
            } else {
                conditions.set(Condition(type: ConditionType.applied, status: Condition.false, reason: "NotApplied", message: "not applied yet", lastTransitionTime: now, observedGeneration: generation))
                notApplied.append(key.description)
            }
            var feedback: StatusFeedback?
            if let live {
                let verdict = Availability.evaluate(live)
                conditions.set(Condition(type: ConditionType.available, status: verdict.status, reason: verdict.reason, message: verdict.message, lastTransitionTime: now, observedGeneration: generation))
                if verdict.status != Condition.true { notAvailable.append(key.description) }
                if let rules = config?.feedbackRules, !rules.isEmpty {
                    feedback = StatusFeedback(values: Feedback.values(for: live, rules: rules))
                    conditions.set(Condition(type: ConditionType.statusFeedbackSynced, status: Condition.true, reason: "StatusFeedbackSynced", lastTransitionTime: now, observedGeneration: generation))
                }
            } else {
                conditions.set(Condition(type: ConditionType.available, status: Condition.false, reason: "ResourceNotFound", message: "the object does not exist on the site", lastTransitionTime: now, observedGeneration: generation))
                notAvailable.append(key.description)
            }
            manifests.append(ManifestCondition(resourceMeta: ResourceMeta(ordinal: ordinal, key: key), statusFeedback: feedback, conditions: conditions))
        }
        var conditions = oldStatus?.conditions ?? []
        if notApplied.isEmpty {
            conditions.set(Condition(type: ConditionType.applied, status: Condition.true, reason: "AppliedManifestWorkComplete", message: "Apply manifest work complete", lastTransitionTime: now, observedGeneration: generation))
        } else {
            conditions.set(Condition(type: ConditionType.applied, status: Condition.false, reason: "AppliedManifestWorkFailed", message: "not applied: " + notApplied.joined(separator: ", "), lastTransitionTime: now, observedGeneration: generation))
        }
        if notAvailable.isEmpty {
            conditions.set(Condition(type: ConditionType.available, status: Condition.true, reason: "ResourcesAvailable", message: "All resources are available", lastTransitionTime: now, observedGeneration: generation))
        } else {
            progressing = notApplied.isEmpty
            conditions.set(Condition(type: ConditionType.available, status: Condition.false, reason: "ResourcesNotAvailable", message: "not available: " + notAvailable.joined(separator: ", "), lastTransitionTime: now, observedGeneration: generation))
        }
        let degraded = !(failures[work.name]?.isEmpty ?? true)
        conditions.set(Condition(type: ConditionType.degraded, status: degraded ? Condition.true : Condition.false, reason: degraded ? "ApplyFailed" : "AsExpected", message: degraded ? "some manifests failed to apply" : "", lastTransitionTime: now, observedGeneration: generation))
        return (ManifestWork.Status(conditions: conditions, resourceStatus: .init(manifests: manifests)), progressing)
    }
}
