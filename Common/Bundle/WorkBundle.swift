/// Everything an agent needs to bring its site to a revision: all works (full) or what changed since a revision.
public struct WorkBundle: Codable, Sendable, Equatable {
    public var cluster: String
    public var revision: Int64
    /// The revision this delta starts from; nil for a full bundle.
    public var since: Int64?
    public var works: [ManifestWork]
    /// Works removed since `since` (delta bundles only).
    public var tombstones: [Tombstone]
    /// An administrator released the deletions an agent held at any revision up to this one
    /// (`cairnctl cluster release-deletions`).
    public var deletionsReleasedThrough: Int64?

    public init(cluster: String, revision: Int64, since: Int64?, works: [ManifestWork], tombstones: [Tombstone] = [], deletionsReleasedThrough: Int64? = nil) {
        self.cluster = cluster
        self.revision = revision
        self.since = since
        self.works = works
        self.tombstones = tombstones
        self.deletionsReleasedThrough = deletionsReleasedThrough
    }

    public var isFull: Bool { since == nil }
}

public struct Tombstone: Codable, Sendable, Equatable {
    public var name: String
    public var revision: Int64
    public init(name: String, revision: Int64) {
        self.name = name
        self.revision = revision
    }
}
