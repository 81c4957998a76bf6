import Foundation

/// A secret that lets new sites join, with its approval policy. The secret is shown once, at creation.
public struct EnrolmentToken: Codable, Sendable, Equatable {
    public var id: String
    public var autoApprove: Bool
    public var labels: [String: String]
    public var expiresAt: Date
    /// nil: unlimited.
    public var maxUses: Int?
    public var uses: Int
    public var revoked: Bool
    public var createdAt: Date
    /// Only in the answer to `token create`.
    public var token: String?
    /// Only in the answer to `token create`: what a new site pins.
    public var caFingerprint: String?

    public init(id: String, autoApprove: Bool, labels: [String: String], expiresAt: Date, maxUses: Int?, uses: Int = 0, revoked: Bool = false, createdAt: Date, token: String? = nil) {
        self.id = id
        self.autoApprove = autoApprove
        self.labels = labels
        self.expiresAt = expiresAt
        self.maxUses = maxUses
        self.uses = uses
        self.revoked = revoked
        self.createdAt = createdAt
        self.token = token
    }
}

/// What an administrator asks for when creating a token.
public struct TokenRequest: Codable, Sendable {
    public var autoApprove: Bool?
    public var labels: [String: String]?
    /// Lifetime in seconds; default one day.
    public var ttlSeconds: Double?
    public var maxUses: Int?
    public init(autoApprove: Bool? = nil, labels: [String: String]? = nil, ttlSeconds: Double? = nil, maxUses: Int? = nil) {
        self.autoApprove = autoApprove
        self.labels = labels
        self.ttlSeconds = ttlSeconds
        self.maxUses = maxUses
    }
}

/// A label change on a cluster.
public struct LabelPatch: Codable, Sendable {
    public var set: [String: String]?
    public var remove: [String]?
    public init(set: [String: String]? = nil, remove: [String]? = nil) {
        self.set = set
        self.remove = remove
    }
}

/// Lists are `{"items": [...]}`.
public struct ItemList<Item: Codable & Sendable>: Codable, Sendable {
    public var items: [Item]
    public init(items: [Item]) { self.items = items }
}

/// One administrator write, as the audit log keeps it.
public struct AuditEntry: Codable, Sendable, Equatable {
    public var time: Date
    /// `role:` and the first 12 hex digits of the token's hash; never the token.
    public var actor: String
    public var action: String
    public var status: Int
    public var result: String

    public init(time: Date, actor: String, action: String, status: Int, result: String) {
        self.time = time
        self.actor = actor
        self.action = action
        self.status = status
        self.result = result
    }
}
