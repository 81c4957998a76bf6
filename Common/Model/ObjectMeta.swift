import Foundation

/// Kubernetes-style object metadata for Cairn's own resources.
public struct ObjectMeta: Codable, Sendable, Equatable {
    public var name: String
    public var namespace: String?
    public var labels: [String: String]?
    public var annotations: [String: String]?
    public var generation: Int64?
    public var uid: String?
    public var creationTimestamp: Date?
    public var deletionTimestamp: Date?

    public init(name: String, namespace: String? = nil, labels: [String: String]? = nil) {
        self.name = name
        self.namespace = namespace
        self.labels = labels
    }
}

/// A Kubernetes-style condition.
public struct Condition: Codable, Sendable, Equatable {
    public var type: String
    public var status: String
    public var reason: String
    public var message: String
    public var lastTransitionTime: Date
    public var observedGeneration: Int64?

    public init(
        type: String, status: String, reason: String, message: String = "", lastTransitionTime: Date = Date(),
        observedGeneration: Int64? = nil
    ) {
        self.type = type
        self.status = status
        self.reason = reason
        self.message = message
        self.lastTransitionTime = lastTransitionTime
        self.observedGeneration = observedGeneration
    }

    public static let `true` = "True"
    public static let `false` = "False"
    public static let unknown = "Unknown"
    /// The statuses a condition may have.
    public static let statuses: Set<String> = [`true`, `false`, unknown]
}

extension Array where Element == Condition {
    public subscript(type type: String) -> Condition? {
        first { $0.type == type }
    }

    public func isTrue(_ type: String) -> Bool { self[type: type]?.status == Condition.true }

    /// Sets a condition, keeping its transition time when its status did not change.
    public mutating func set(_ condition: Condition) {
        if let index = firstIndex(where: { $0.type == condition.type }) {
            var updated = condition
            if self[index].status == condition.status {
                updated.lastTransitionTime = self[index].lastTransitionTime
            }
            self[index] = updated
        } else {
            append(condition)
        }
    }

    /// Equal apart from transition times: used to decide whether a status is worth sending.
    public func sameState(as other: [Condition]) -> Bool {
        guard count == other.count else { return false }
        return zip(self, other).allSatisfy {
            $0.type == $1.type && $0.status == $1.status && $0.reason == $1.reason && $0.message == $1.message
                && $0.observedGeneration == $1.observedGeneration
        }
    }
}
