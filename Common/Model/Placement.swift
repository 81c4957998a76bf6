import Foundation

/// A rule choosing clusters (OCM's Placement, same field names; cluster.open-cluster-management.io/v1beta1 accepted).
public struct Placement: Codable, Sendable, Equatable {
    public var apiVersion: String = CairnAPI.version
    public var kind: String = "Placement"
    public var metadata: ObjectMeta
    public var spec: Spec
    public var status: Status?

    public init(metadata: ObjectMeta, spec: Spec, status: Status? = nil) {
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }

    public var name: String { metadata.name }

    public struct Spec: Codable, Sendable, Equatable {
        /// Unset: every cluster that matches.
        public var numberOfClusters: Int?
        /// ORed: a cluster matching any predicate is a candidate. None: every cluster.
        public var predicates: [Predicate]?
        public var prioritizerPolicy: PrioritizerPolicy?
        public var tolerations: [Toleration]?
        /// Edge-first: unset means a cluster that went silent keeps its decisions. Set (like 10m) to move
        /// workloads away from a cluster unreachable for that long.
        public var evictUnreachableAfter: String?
        /// Decision groups, in order, for ProgressivePerGroup rollouts (OCM's decisionStrategy).
        public var decisionStrategy: DecisionStrategy?

        public init(numberOfClusters: Int? = nil, predicates: [Predicate]? = nil, prioritizerPolicy: PrioritizerPolicy? = nil, tolerations: [Toleration]? = nil, evictUnreachableAfter: String? = nil, decisionStrategy: DecisionStrategy? = nil) {
            self.decisionStrategy = decisionStrategy
            self.numberOfClusters = numberOfClusters
            self.predicates = predicates
            self.prioritizerPolicy = prioritizerPolicy
            self.tolerations = tolerations
            self.evictUnreachableAfter = evictUnreachableAfter
        }
    }

    public struct DecisionStrategy: Codable, Sendable, Equatable {
        public struct GroupStrategy: Codable, Sendable, Equatable {
            public var decisionGroups: [DecisionGroup]?
            public init(decisionGroups: [DecisionGroup]?) { self.decisionGroups = decisionGroups }
        }
        public struct DecisionGroup: Codable, Sendable, Equatable {
            public var groupName: String
            public var groupClusterSelector: ClusterSelector
            public init(groupName: String, groupClusterSelector: ClusterSelector) {
                self.groupName = groupName
                self.groupClusterSelector = groupClusterSelector
            }
        }
        public var groupStrategy: GroupStrategy?
        public init(groupStrategy: GroupStrategy?) { self.groupStrategy = groupStrategy }
    }

    /// The index of the first decision group a cluster belongs to; clusters in none come last.
    public func groupIndex(of cluster: ManagedCluster) -> Int {
        let groups = spec.decisionStrategy?.groupStrategy?.decisionGroups ?? []
        let labels = cluster.metadata.labels ?? [:]
        let claims = Dictionary(cluster.status.clusterClaims.map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first })
        return groups.firstIndex {
            ($0.groupClusterSelector.labelSelector?.matches(labels) ?? true) && ($0.groupClusterSelector.claimSelector?.matches(claims) ?? true)
        } ?? groups.count
    }

    public struct Predicate: Codable, Sendable, Equatable {
        public var requiredClusterSelector: ClusterSelector
        public init(requiredClusterSelector: ClusterSelector) { self.requiredClusterSelector = requiredClusterSelector }
    }

    public struct ClusterSelector: Codable, Sendable, Equatable {
        public var labelSelector: LabelSelector?
        public var claimSelector: ClaimSelector?
        public init(labelSelector: LabelSelector? = nil, claimSelector: ClaimSelector? = nil) {
            self.labelSelector = labelSelector
            self.claimSelector = claimSelector
        }
    }

    public struct PrioritizerPolicy: Codable, Sendable, Equatable {
        public var mode: String?
        public var configurations: [PrioritizerConfig]?
        public init(mode: String? = nil, configurations: [PrioritizerConfig]? = nil) {
            self.mode = mode
            self.configurations = configurations
        }
    }

    public struct PrioritizerConfig: Codable, Sendable, Equatable {
        public struct ScoreCoordinate: Codable, Sendable, Equatable {
            public var type: String?
            public var builtIn: String?
            public init(builtIn: String) {
                self.type = "BuiltIn"
                self.builtIn = builtIn
            }
        }
        public var scoreCoordinate: ScoreCoordinate
        public var weight: Int?
        public init(builtIn: String, weight: Int? = nil) {
            self.scoreCoordinate = ScoreCoordinate(builtIn: builtIn)
            self.weight = weight
        }
    }

    public struct Status: Codable, Sendable, Equatable {
        public var numberOfSelectedClusters: Int
        public var decisions: [Decision]
        public var conditions: [Condition]
        public init(numberOfSelectedClusters: Int = 0, decisions: [Decision] = [], conditions: [Condition] = []) {
            self.numberOfSelectedClusters = numberOfSelectedClusters
            self.decisions = decisions
            self.conditions = conditions
        }
    }

    /// One chosen cluster, with why and how it scored.
    public struct Decision: Codable, Sendable, Equatable {
        public var clusterName: String
        public var reason: String
        public var score: Int
        public init(clusterName: String, reason: String, score: Int) {
            self.clusterName = clusterName
            self.reason = reason
            self.score = score
        }
    }

    /// The built-in prioritizers.
    public static let prioritizers: Set<String> = ["Balance", "Steady", "ResourceAllocatableCPU", "ResourceAllocatableMemory"]
    public static let ocmVersion = "cluster.open-cluster-management.io/v1beta1"
}

/// Kubernetes label selector.
public struct LabelSelector: Codable, Sendable, Equatable {
    public var matchLabels: [String: String]?
    public var matchExpressions: [SelectorRequirement]?
    public init(matchLabels: [String: String]? = nil, matchExpressions: [SelectorRequirement]? = nil) {
        self.matchLabels = matchLabels
        self.matchExpressions = matchExpressions
    }

    public func matches(_ labels: [String: String]) -> Bool {
        for (key, value) in matchLabels ?? [:] where labels[key] != value { return false }
        return (matchExpressions ?? []).allSatisfy { $0.matches(labels) }
    }
}

/// The same operators over the claims agents report.
public struct ClaimSelector: Codable, Sendable, Equatable {
    public var matchExpressions: [SelectorRequirement]?
    public init(matchExpressions: [SelectorRequirement]? = nil) { self.matchExpressions = matchExpressions }

    public func matches(_ claims: [String: String]) -> Bool {
        (matchExpressions ?? []).allSatisfy { $0.matches(claims) }
    }
}

public struct SelectorRequirement: Codable, Sendable, Equatable {
    public enum Operator: String, Codable, Sendable {
        case `in` = "In"
        case notIn = "NotIn"
        case exists = "Exists"
        case doesNotExist = "DoesNotExist"
    }
    public var key: String
    public var `operator`: Operator
    public var values: [String]?

    public init(key: String, operator: Operator, values: [String]? = nil) {
        self.key = key
        self.operator = `operator`
        self.values = values
    }

    public func matches(_ labels: [String: String]) -> Bool {
        switch `operator` {
        case .in: return labels[key].map { (values ?? []).contains($0) } ?? false
        case .notIn: return labels[key].map { !(values ?? []).contains($0) } ?? true
        case .exists: return labels[key] != nil
        case .doesNotExist: return labels[key] == nil
        }
    }

    func validate(field: String) throws {
        try Names.validateLabelKey(key, field: "\(field).key")
        switch `operator` {
        case .in, .notIn:
            guard let values, !values.isEmpty else {
                throw CairnError(.invalid, "\(field).values must not be empty for \(`operator`.rawValue)", field: "\(field).values")
            }
        case .exists, .doesNotExist:
            guard values?.isEmpty ?? true else {
                throw CairnError(.invalid, "\(field).values must be empty for \(`operator`.rawValue)", field: "\(field).values")
            }
        }
    }
}

/// What lets a placement choose (or keep) a tainted cluster.
public struct Toleration: Codable, Sendable, Equatable {
    public var key: String?
    public var `operator`: String?
    public var value: String?
    public var effect: String?
    public var tolerationSeconds: Int?

    public init(key: String? = nil, operator: String? = nil, value: String? = nil, effect: String? = nil, tolerationSeconds: Int? = nil) {
        self.key = key
        self.operator = `operator`
        self.value = value
        self.effect = effect
        self.tolerationSeconds = tolerationSeconds
    }

    /// Whether this toleration covers the taint (ignoring time).
    public func tolerates(_ taint: Taint) -> Bool {
        if let effect, effect != taint.effect { return false }
        switch `operator` ?? "Equal" {
        case "Exists": return key == nil || key == taint.key
        default: return key == taint.key && (value ?? "") == (taint.value ?? "")
        }
    }
}

/// Taint keys and effects the hub uses.
public enum Taints {
    public static let unreachable = "cairn.io/unreachable"
    public static let unavailable = "cairn.io/unavailable"
    public static let noSelect = "NoSelect"
    public static let noSelectIfNew = "NoSelectIfNew"
}

extension Placement {
    public func validate() throws {
        guard kind == "Placement" else { throw CairnError(.invalid, "kind must be Placement", field: "kind") }
        guard apiVersion == CairnAPI.version || apiVersion == Placement.ocmVersion else {
            throw CairnError(.invalid, "apiVersion must be \(CairnAPI.version) or \(Placement.ocmVersion)", field: "apiVersion")
        }
        try Names.validateLabel(metadata.name, field: "metadata.name")
        if let number = spec.numberOfClusters, number < 0 {
            throw CairnError(.invalid, "spec.numberOfClusters must not be negative", field: "spec.numberOfClusters")
        }
        for (index, predicate) in (spec.predicates ?? []).enumerated() {
            let field = "spec.predicates[\(index)].requiredClusterSelector"
            try Names.validateLabels(predicate.requiredClusterSelector.labelSelector?.matchLabels, field: "\(field).labelSelector.matchLabels")
            for (position, requirement) in (predicate.requiredClusterSelector.labelSelector?.matchExpressions ?? []).enumerated() {
                try requirement.validate(field: "\(field).labelSelector.matchExpressions[\(position)]")
            }
            for (position, requirement) in (predicate.requiredClusterSelector.claimSelector?.matchExpressions ?? []).enumerated() {
                try requirement.validate(field: "\(field).claimSelector.matchExpressions[\(position)]")
            }
        }
        for (index, configuration) in (spec.prioritizerPolicy?.configurations ?? []).enumerated() {
            let name = configuration.scoreCoordinate.builtIn ?? ""
            guard Placement.prioritizers.contains(name) else {
                throw CairnError(
                    .invalid, "spec.prioritizerPolicy.configurations[\(index)].scoreCoordinate.builtIn '\(name)' is not one of \(Placement.prioritizers.sorted().joined(separator: ", "))",
                    field: "spec.prioritizerPolicy.configurations[\(index)].scoreCoordinate.builtIn")
            }
        }
        for (index, toleration) in (spec.tolerations ?? []).enumerated() {
            if let effect = toleration.effect, ![Taints.noSelect, Taints.noSelectIfNew].contains(effect) {
                throw CairnError(.invalid, "spec.tolerations[\(index)].effect must be NoSelect or NoSelectIfNew", field: "spec.tolerations[\(index)].effect")
            }
            if let op = toleration.operator, !["Equal", "Exists"].contains(op) {
                throw CairnError(.invalid, "spec.tolerations[\(index)].operator must be Equal or Exists", field: "spec.tolerations[\(index)].operator")
            }
        }
        if let evict = spec.evictUnreachableAfter { _ = try Durations.seconds(evict, field: "spec.evictUnreachableAfter") }
    }
}
