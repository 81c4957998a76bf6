import CairnCommon

/// How an agent touches its site: the built-in simulated cluster, or a real Kubernetes API server.
public protocol ClusterAdapter: Sendable {
    /// Creates or updates the object as the strategy says; returns the object's UID.
    func apply(_ manifest: JSONValue, key: ManifestKey, strategy: UpdateStrategy) async throws -> ApplyOutcome
    /// The live object with its status, or nil when it does not exist.
    func get(_ key: ManifestKey) async throws -> JSONValue?
    /// Deletes the object, only if its UID is still `uid` (an object someone recreated is not ours to delete).
    func delete(_ key: ManifestKey, uid: String?, propagation: PropagationPolicy) async throws -> DeleteOutcome
    /// Every object the adapter holds or manages.
    func objects() async throws -> [JSONValue]
    /// What the site claims about itself for the heartbeat.
    func claims() async throws -> SiteClaims
    /// Releases connections when the agent stops.
    func shutdown() async
    /// The objects the agent manages, to watch where the adapter can; `changed` is called when one changes
    /// (or a watch fails, so the caller looks). Returns true when every one of them is watched now, so the
    /// caller need not poll them.
    func watch(_ keys: Set<ManifestKey>, changed: @escaping @Sendable () -> Void) async -> Bool
}

extension ClusterAdapter {
    public func shutdown() async {}
    public func watch(_ keys: Set<ManifestKey>, changed: @escaping @Sendable () -> Void) async -> Bool { false }
}

public struct ApplyOutcome: Sendable {
    public var uid: String?
    public var changed: Bool
    public init(uid: String?, changed: Bool) {
        self.uid = uid
        self.changed = changed
    }
}

public enum DeleteOutcome: Sendable {
    case deleted
    case alreadyGone
    /// The object there now has another UID: someone else recreated it, so it is left alone.
    case notOurs
}

public struct SiteClaims: Sendable {
    public var claims: [ClusterClaim]
    public var allocatable: [String: String]
    public init(claims: [ClusterClaim], allocatable: [String: String]) {
        self.claims = claims
        self.allocatable = allocatable
    }
}

/// A failure applying one manifest; other manifests go on.
public struct AdapterError: Error, Sendable, CustomStringConvertible {
    public var reason: String
    public var message: String
    public init(reason: String, message: String) {
        self.reason = reason
        self.message = message
    }
    public var description: String { message }

    /// The site's API as a whole failed (unreachable, or our credentials refused): nothing else will do better
    /// now, so the pass stops and is retried with backoff rather than marking every manifest failed.
    public var isSiteWide: Bool { reason == Self.unreachable || reason == "Unauthorized" }
    public static let unreachable = "APIServerUnreachable"
}
