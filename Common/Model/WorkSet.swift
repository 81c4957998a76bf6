import Foundation

/// A ManifestWork template fanned out to the clusters a placement chooses, rolled out by a strategy
/// (OCM's ManifestWorkReplicaSet; work.open-cluster-management.io/v1alpha1 accepted).
public struct WorkSet: Codable, Sendable, Equatable {
    public var apiVersion: String = CairnAPI.version
    public var kind: String = "WorkSet"
    public var metadata: ObjectMeta
    public var spec: Spec
    public var status: Status?

    public init(metadata: ObjectMeta, spec: Spec, status: Status? = nil) {
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }

    public var name: String { metadata.name }
    public static let ocmVersion = "work.open-cluster-management.io/v1alpha1"

    public struct Spec: Codable, Sendable, Equatable {
        public var placementRefs: [PlacementRef]
        /// Pause (default) or Rollback when a rollout passes maxFailures.
        public var onFailure: String?
        public var manifestWorkTemplate: ManifestWork.Spec
        /// Values for `{{ values.KEY }}`, by cluster label selector; later entries win.
        public var overrides: [Override]?
        /// How long an old copy waits for its replacement to be Available before it is removed anyway.
        public var relocationDeadline: String?

        public init(placementRefs: [PlacementRef], onFailure: String? = nil, manifestWorkTemplate: ManifestWork.Spec, overrides: [Override]? = nil, relocationDeadline: String? = nil) {
            self.placementRefs = placementRefs
            self.onFailure = onFailure
            self.manifestWorkTemplate = manifestWorkTemplate
            self.overrides = overrides
            self.relocationDeadline = relocationDeadline
        }
    }

    public struct PlacementRef: Codable, Sendable, Equatable {
        public var name: String
        public var rolloutStrategy: RolloutStrategy?
        public init(name: String, rolloutStrategy: RolloutStrategy? = nil) {
            self.name = name
            self.rolloutStrategy = rolloutStrategy
        }
    }

    public struct RolloutStrategy: Codable, Sendable, Equatable {
        /// All, Progressive or ProgressivePerGroup (treated as Progressive).
        public var type: String
        public var progressive: Progressive?
        public init(type: String, progressive: Progressive? = nil) {
            self.type = type
            self.progressive = progressive
        }
    }

    public struct Progressive: Codable, Sendable, Equatable {
        public var maxConcurrency: CountOrPercent?
        public var minSuccessTime: String?
        public var progressDeadline: String?
        public var maxFailures: CountOrPercent?
        public init(maxConcurrency: CountOrPercent? = nil, minSuccessTime: String? = nil, progressDeadline: String? = nil, maxFailures: CountOrPercent? = nil) {
            self.maxConcurrency = maxConcurrency
            self.minSuccessTime = minSuccessTime
            self.progressDeadline = progressDeadline
            self.maxFailures = maxFailures
        }
    }

    public struct Override: Codable, Sendable, Equatable {
        public var clusterSelector: LabelSelector
        public var values: [String: String]
        public init(clusterSelector: LabelSelector, values: [String: String]) {
            self.clusterSelector = clusterSelector
            self.values = values
        }
    }

    public struct Status: Codable, Sendable, Equatable {
        public var summary: Summary
        public var clusters: [ClusterState]
        /// Progressing, Succeeded, Paused, RolledBack.
        public var phase: String
        public var revision: Int64
        /// The last revision that succeeded on every chosen cluster (what a rollback returns to).
        public var lastSucceededRevision: Int64?
        public var conditions: [Condition]

        public init(summary: Summary = Summary(), clusters: [ClusterState] = [], phase: String = "Progressing", revision: Int64 = 0, lastSucceededRevision: Int64? = nil, conditions: [Condition] = []) {
            self.summary = summary
            self.clusters = clusters
            self.phase = phase
            self.revision = revision
            self.lastSucceededRevision = lastSucceededRevision
            self.conditions = conditions
        }
    }

    public struct Summary: Codable, Sendable, Equatable {
        public var total = 0
        public var applied = 0
        public var available = 0
        public var degraded = 0
        public var updated = 0
        public init() {}
    }

    /// One cluster's place in the rollout.
    public struct ClusterState: Codable, Sendable, Equatable {
        /// ToApply, Progressing, Succeeded, Failed, Removing.
        public var name: String
        public var state: String
        public var revision: Int64?
        public var message: String?
        public init(name: String, state: String, revision: Int64?, message: String? = nil) {
            self.name = name
            self.state = state
            self.revision = revision
            self.message = message
        }
    }
}

/// `1`, or `"25%"` of a total (rounded up, at least 1 when the percentage is above 0).
public enum CountOrPercent: Codable, Sendable, Equatable {
    case count(Int)
    case percent(Int)

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let count = try? container.decode(Int.self) {
            self = .count(count)
            return
        }
        let text = try container.decode(String.self)
        if text.hasSuffix("%"), let value = Int(text.dropLast()), (0...100).contains(value) {
            self = .percent(value)
        } else if let value = Int(text) {
            self = .count(value)
        } else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "must be a count or a percentage like 25%")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .count(let value): try container.encode(value)
        case .percent(let value): try container.encode("\(value)%")
        }
    }

    public func resolve(total: Int) -> Int {
        switch self {
        case .count(let value): return max(0, value)
        case .percent(let value): return value == 0 ? 0 : max(1, Int((Double(total) * Double(value) / 100).rounded(.up)))
        }
    }
}

extension WorkSet {
    public func validate() throws {
        guard kind == "WorkSet" || kind == "ManifestWorkReplicaSet" else { throw CairnError(.invalid, "kind must be WorkSet", field: "kind") }
        guard apiVersion == CairnAPI.version || apiVersion == WorkSet.ocmVersion else {
            throw CairnError(.invalid, "apiVersion must be \(CairnAPI.version) or \(WorkSet.ocmVersion)", field: "apiVersion")
        }
        try Names.validateLabel(metadata.name, field: "metadata.name")
        guard spec.placementRefs.count == 1 else {
            throw CairnError(.invalid, "spec.placementRefs must name exactly one placement", field: "spec.placementRefs")
        }
        let reference = spec.placementRefs[0]
        try Names.validateLabel(reference.name, field: "spec.placementRefs[0].name")
        if let strategy = reference.rolloutStrategy {
            guard ["All", "Progressive", "ProgressivePerGroup"].contains(strategy.type) else {
                throw CairnError(.invalid, "spec.placementRefs[0].rolloutStrategy.type must be All, Progressive or ProgressivePerGroup", field: "spec.placementRefs[0].rolloutStrategy.type")
            }
            for (field, value) in [("minSuccessTime", strategy.progressive?.minSuccessTime), ("progressDeadline", strategy.progressive?.progressDeadline)] {
                if let value { _ = try Durations.seconds(value, field: "spec.placementRefs[0].rolloutStrategy.progressive.\(field)") }
            }
        }
        if let onFailure = spec.onFailure, !["Pause", "Rollback"].contains(onFailure) {
            throw CairnError(.invalid, "spec.onFailure must be Pause or Rollback", field: "spec.onFailure")
        }
        if let deadline = spec.relocationDeadline { _ = try Durations.seconds(deadline, field: "spec.relocationDeadline") }
        // The template must be a valid work once rendered; check its shape with placeholders left as they are.
        try ManifestWork(metadata: ObjectMeta(name: metadata.name), spec: spec.manifestWorkTemplate).validate()
    }
}
