import Foundation

/// A named set of manifests destined for one cluster (OCM's ManifestWork, same field names).
public struct ManifestWork: Codable, Sendable, Equatable {
    public var apiVersion: String = CairnAPI.version
    public var kind: String = "ManifestWork"
    public var metadata: ObjectMeta
    public var spec: Spec
    public var status: Status?

    public init(metadata: ObjectMeta, spec: Spec, status: Status? = nil) {
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }

    public var name: String { metadata.name }
    public var generation: Int64 { metadata.generation ?? 0 }

    public struct Spec: Codable, Sendable, Equatable {
        public var workload: Workload
        public var deleteOption: DeleteOption?
        public var manifestConfigs: [ManifestConfig]?

        public init(manifests: [JSONValue], deleteOption: DeleteOption? = nil, manifestConfigs: [ManifestConfig]? = nil) {
            self.workload = Workload(manifests: manifests)
            self.deleteOption = deleteOption
            self.manifestConfigs = manifestConfigs
        }

        /// The propagation policy to use when the work leaves the cluster (Foreground unless set).
        public var propagationPolicy: PropagationPolicy { deleteOption?.propagationPolicy ?? .foreground }

        /// The config whose resource identifier matches a manifest, if any.
        public func config(for key: ManifestKey) -> ManifestConfig? {
            manifestConfigs?.first { $0.resourceIdentifier.matches(key) }
        }
    }

    public struct Workload: Codable, Sendable, Equatable {
        public var manifests: [JSONValue]
        public init(manifests: [JSONValue]) { self.manifests = manifests }
    }

    public struct DeleteOption: Codable, Sendable, Equatable {
        public var propagationPolicy: PropagationPolicy
        public init(propagationPolicy: PropagationPolicy) { self.propagationPolicy = propagationPolicy }
    }

    public struct Status: Codable, Sendable, Equatable {
        public var conditions: [Condition]
        public var resourceStatus: ResourceStatus

        public init(conditions: [Condition] = [], resourceStatus: ResourceStatus = ResourceStatus()) {
            self.conditions = conditions
            self.resourceStatus = resourceStatus
        }

        /// Equal apart from transition times.
        public func sameState(as other: Status) -> Bool {
            conditions.sameState(as: other.conditions)
                && resourceStatus.manifests.count == other.resourceStatus.manifests.count
                && zip(resourceStatus.manifests, other.resourceStatus.manifests).allSatisfy {
                    $0.resourceMeta == $1.resourceMeta && $0.statusFeedback == $1.statusFeedback
                        && $0.conditions.sameState(as: $1.conditions)
                }
        }
    }

    public struct ResourceStatus: Codable, Sendable, Equatable {
        public var manifests: [ManifestCondition]
        public init(manifests: [ManifestCondition] = []) { self.manifests = manifests }
    }
}

public enum PropagationPolicy: String, Codable, Sendable {
    case foreground = "Foreground"
    case background = "Background"
    case orphan = "Orphan"
}

/// Per-manifest behaviour: how to update it and what status to feed back.
public struct ManifestConfig: Codable, Sendable, Equatable {
    public var resourceIdentifier: ResourceIdentifier
    public var updateStrategy: UpdateStrategy?
    public var feedbackRules: [FeedbackRule]?

    public init(resourceIdentifier: ResourceIdentifier, updateStrategy: UpdateStrategy? = nil, feedbackRules: [FeedbackRule]? = nil) {
        self.resourceIdentifier = resourceIdentifier
        self.updateStrategy = updateStrategy
        self.feedbackRules = feedbackRules
    }
}

public struct ResourceIdentifier: Codable, Sendable, Equatable {
    public var group: String?
    public var resource: String
    public var name: String
    public var namespace: String?

    public init(group: String? = nil, resource: String, name: String, namespace: String? = nil) {
        self.group = group
        self.resource = resource
        self.name = name
        self.namespace = namespace
    }

    public func matches(_ key: ManifestKey) -> Bool {
        (group ?? "") == key.group && resource == key.resource && name == key.name
            && (namespace ?? "") == (key.namespace ?? "")
    }
}

public struct UpdateStrategy: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        case serverSideApply = "ServerSideApply"
        case update = "Update"
        case createOnly = "CreateOnly"
        case readOnly = "ReadOnly"
    }
    public var type: Kind
    /// For ServerSideApply: take fields other managers own (`force`), default false — a conflict is reported.
    public var serverSideApply: ServerSideApply?
    public init(type: Kind, serverSideApply: ServerSideApply? = nil) {
        self.type = type
        self.serverSideApply = serverSideApply
    }

    public struct ServerSideApply: Codable, Sendable, Equatable {
        public var force: Bool?
        /// Fields another controller owns once the object exists (e.g. `.spec.replicas` under an HPA).
        public var ignoreFields: [IgnoreField]?
        public init(force: Bool? = nil, ignoreFields: [IgnoreField]? = nil) {
            self.force = force
            self.ignoreFields = ignoreFields
        }
    }

    /// OCM's shape: `condition` (only `OnSpokePresent`, the default: once the field is on the site's object,
    /// the agent never sets it again) and `jsonPaths` in the `.spec.replicas` form.
    public struct IgnoreField: Codable, Sendable, Equatable {
        public static let onSpokePresent = "OnSpokePresent"
        public var condition: String?
        public var jsonPaths: [String]
        public init(condition: String? = nil, jsonPaths: [String]) {
            self.condition = condition
            self.jsonPaths = jsonPaths
        }
    }

    /// The field paths left to others, as segments.
    public var ignoredPaths: [[String]] {
        (serverSideApply?.ignoreFields ?? []).flatMap { $0.jsonPaths.compactMap { FeedbackPath($0)?.segments } }
    }

    /// The manifest to write over `live`: each ignored field the live object has keeps its live value
    /// (`keep`), or is left out so the writer does not claim it (`!keep`, for an apply patch).
    public func respectingIgnoredFields(_ manifest: JSONValue, live: JSONValue?, keep: Bool) -> JSONValue {
        guard let live else { return manifest }
        var result = manifest
        for path in ignoredPaths {
            guard let value = live.value(at: path) else { continue }
            result.set(keep ? value : nil, at: path[...])
        }
        return result
    }

    public static let `default` = UpdateStrategy(type: .serverSideApply)
}

public struct FeedbackRule: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        case wellKnownStatus = "WellKnownStatus"
        case jsonPaths = "JSONPaths"
    }
    public struct JSONPath: Codable, Sendable, Equatable {
        public var name: String
        public var path: String
        public init(name: String, path: String) {
            self.name = name
            self.path = path
        }
    }
    public var type: Kind
    public var jsonPaths: [JSONPath]?

    public init(type: Kind, jsonPaths: [JSONPath]? = nil) {
        self.type = type
        self.jsonPaths = jsonPaths
    }
}

/// The state of one manifest of a work on its cluster.
public struct ManifestCondition: Codable, Sendable, Equatable {
    public var resourceMeta: ResourceMeta
    public var statusFeedback: StatusFeedback?
    public var conditions: [Condition]

    public init(resourceMeta: ResourceMeta, statusFeedback: StatusFeedback? = nil, conditions: [Condition]) {
        self.resourceMeta = resourceMeta
        self.statusFeedback = statusFeedback
        self.conditions = conditions
    }
}

public struct ResourceMeta: Codable, Sendable, Equatable {
    public var ordinal: Int
    public var group: String
    public var version: String
    public var kind: String
    public var resource: String
    public var name: String
    public var namespace: String?

    public init(ordinal: Int, key: ManifestKey) {
        self.ordinal = ordinal
        self.group = key.group
        self.version = key.version
        self.kind = key.kind
        self.resource = key.resource
        self.name = key.name
        self.namespace = key.namespace
    }
}

public struct StatusFeedback: Codable, Sendable, Equatable {
    public var values: [FeedbackValue]
    public init(values: [FeedbackValue]) { self.values = values }
}

public struct FeedbackValue: Codable, Sendable, Equatable {
    public struct FieldValue: Codable, Sendable, Equatable {
        public var type: String
        public var integer: Int64?
        public var string: String?
        public var boolean: Bool?
        public var jsonRaw: String?

        public init(_ value: JSONValue) {
            switch value {
            case .int(let number): type = "Integer"; integer = number
            case .string(let text): type = "String"; string = text
            case .bool(let flag): type = "Boolean"; boolean = flag
            default:
                type = "JsonRaw"
                jsonRaw = (try? CairnJSON.encode(value)).map { String(decoding: $0, as: UTF8.self) }
            }
        }
    }
    public var name: String
    public var fieldValue: FieldValue

    public init(name: String, value: JSONValue) {
        self.name = name
        self.fieldValue = FieldValue(value)
    }
}
