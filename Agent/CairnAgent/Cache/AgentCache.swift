import CairnCommon
import Foundation
import GRDB

/// The agent's memory: identity, the last verified desired state with its revision, what was applied, and
/// the status outbox. WAL with synchronous=FULL: what the agent acknowledged survives kill -9 and power loss.
public struct AgentCache: Sendable {
    let pool: DatabasePool

    public init(path: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
            try db.execute(sql: "PRAGMA cache_size = -128")
        }
        configuration.maximumReaderCount = 2
        pool = try DatabasePool(path: path, configuration: configuration)
        // The cache holds the cluster credential: only the agent's user may read it.
        chmod(path, 0o600)
        try Self.migrator.migrate(pool)
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: identity, works, inventory, outbox") { db in
            try db.execute(
                sql: """
                    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                    CREATE TABLE works (
                        name TEXT PRIMARY KEY, generation INTEGER NOT NULL, body TEXT NOT NULL,
                        revision INTEGER NOT NULL, deleting INTEGER NOT NULL DEFAULT 0);
                    CREATE TABLE inventory (
                        work TEXT NOT NULL, key TEXT NOT NULL, manifest_key TEXT NOT NULL, uid TEXT,
                        PRIMARY KEY (work, key));
                    CREATE TABLE outbox (
                        work TEXT PRIMARY KEY, generation INTEGER NOT NULL, status TEXT, deleted INTEGER NOT NULL,
                        seq INTEGER NOT NULL, sent_seq INTEGER NOT NULL DEFAULT 0);
                    """)
        }
        migrator.registerMigration("v2: work hashes") { db in
            try db.execute(sql: "ALTER TABLE works ADD COLUMN hash TEXT NOT NULL DEFAULT ''")
        }
        migrator.registerMigration("v3: transition journal") { db in
            try db.execute(
                sql: """
                    CREATE TABLE journal (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT, work TEXT NOT NULL, generation INTEGER NOT NULL,
                        time REAL NOT NULL, type TEXT NOT NULL, status TEXT NOT NULL, reason TEXT NOT NULL);
                    """)
        }
        return migrator
    }

    /// SQLite's own verdict on the file ("ok" when sound): what a crash must never break.
    public func integrityCheck() throws -> String {
        try pool.read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check").joined(separator: "; ") }
    }

    /// Caps the file at its current size (`full: true`), as a full disk would, or lifts the cap: SQLite then
    /// fails every write that needs a new page with SQLITE_FULL, the error a full disk gives.
    public func simulateFullDisk(_ full: Bool) throws {
        try pool.writeWithoutTransaction { db in
            let pages = try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0
            try db.execute(sql: "PRAGMA max_page_count = \(full ? pages : 4_294_967_294)")
        }
    }

    /// Allocates 64 KiB in a transaction it rolls back: throws SQLITE_FULL while there is no room to grow.
    public func probeSpace() throws {
        try pool.writeWithoutTransaction { db in
            try db.inTransaction {
                try db.execute(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES ('space-probe', randomblob(65536))")
                return .rollback
            }
        }
    }

    /// True for the error SQLite gives when the disk (or the file's cap) is full.
    public static func isFull(_ error: any Error) -> Bool {
        (error as? DatabaseError)?.resultCode == .SQLITE_FULL
    }

    // MARK: Identity and bookkeeping

    public func identity() throws -> AgentIdentity? {
        try pool.read { db in
            guard let text = try Self.meta(db, "identity") else { return nil }
            return try CairnJSON.decode(AgentIdentity.self, from: Data(text.utf8), what: "cached identity")
        }
    }

    public func saveIdentity(_ identity: AgentIdentity) throws {
        try pool.write { db in try Self.setMeta(db, "identity", try CairnJSON.string(identity)) }
    }

    /// The revision of the last bundle committed, nil before the first.
    public func revision() throws -> Int64? {
        try pool.read { db in try Self.meta(db, "revision").flatMap { Int64($0) } }
    }

    public func recordContact(_ date: Date = Date()) throws {
        try pool.write { db in try Self.setMeta(db, "last_contact", RFC3339.string(from: date)) }
    }

    public func lastContact() throws -> Date? {
        try pool.read { db in try Self.meta(db, "last_contact").flatMap(RFC3339.date(from:)) }
    }

    static func meta(_ db: Database, _ key: String) throws -> String? {
        try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = ?", arguments: [key])
    }

    static func setMeta(_ db: Database, _ key: String, _ value: String) throws {
        try db.execute(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", arguments: [key, value])
    }

    // MARK: Desired state

    /// Commits a verified bundle and its revision in one transaction; returns the names of works that changed.
    /// With a signed statement, the resulting desired state must have the statement's digest, or nothing is
    /// committed: a delta applied to the wrong base, or a cache altered on disk, never becomes the desired state.
    /// Deletions the bundle brings are weighed against `brake` (all of them when the hub `regressed`); when it
    /// trips they are held, in the same transaction, until a bundle releases them.
    @discardableResult
    public func commit(
        _ bundle: WorkBundle, statement: BundleStatement? = nil, signature: String? = nil, brake: DeletionBrake = DeletionBrake(), regressed: Bool = false,
        now: Date = Date()
    ) throws -> Set<String> {
        try pool.write { db in
            var changed = Set<String>()
            let worksBefore = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM works WHERE deleting = 0") ?? 0
            let objectsBefore = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM inventory") ?? 0
            var removedWorks = 0
            var removedObjects = 0
            /// A work leaving counts with its objects, unless it orphans them (then nothing leaves the site). False
            /// when the cache never had it.
            @discardableResult func leave(_ name: String) throws -> Bool {
                guard let row = try Row.fetchOne(db, sql: "SELECT body, deleting FROM works WHERE name = ?", arguments: [name]) else { return false }
                guard row["deleting"] == false else { return true }
                let body: String = row["body"]
                let work = try CairnJSON.decode(ManifestWork.self, from: Data(body.utf8), what: "cached work")
                try db.execute(sql: "UPDATE works SET deleting = 1 WHERE name = ?", arguments: [name])
                changed.insert(name)
                guard work.spec.propagationPolicy != .orphan else { return true }
                removedWorks += 1
                removedObjects += try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM inventory WHERE work = ?", arguments: [name]) ?? 0
                return true
            }
            let present = Set(bundle.works.map(\.name))
            if bundle.isFull {
                for name in try String.fetchAll(db, sql: "SELECT name FROM works WHERE deleting = 0") where !present.contains(name) {
                    try leave(name)
                }
            }
            for tombstone in bundle.tombstones where !present.contains(tombstone.name) {
                if try !leave(tombstone.name) {
                    // Deleted before this site ever had it: nothing to remove, but the hub keeps the work, marked
                    // for deletion, until the site says it is gone — so say so, or it waits for ever.
                    try Self.enqueue(db, WorkStatusUpdate(name: tombstone.name, observedGeneration: 0, status: nil, deleted: true))
                }
            }
            for work in bundle.works {
                let body = try CairnJSON.string(work)
                let existing = try Row.fetchOne(db, sql: "SELECT body, deleting FROM works WHERE name = ?", arguments: [work.name])
                if existing?["body"] == body && existing?["deleting"] == false { continue }
                if work.spec.propagationPolicy != .orphan {
                    // Manifests that leave a work leave the site.
                    let kept = Set(work.spec.workload.manifests.compactMap { ManifestKey(manifest: $0)?.id })
                    removedObjects += try String.fetchAll(db, sql: "SELECT key FROM inventory WHERE work = ?", arguments: [work.name]).filter { !kept.contains($0) }.count
                }
                try db.execute(
                    sql: "INSERT OR REPLACE INTO works (name, generation, body, revision, deleting, hash) VALUES (?, ?, ?, ?, 0, ?)",
                    arguments: [work.name, work.generation, body, bundle.revision, try BundleStatement.workHash(work)])
                changed.insert(work.name)
            }
            if let statement, let signature {
                let hashes = try Row.fetchAll(db, sql: "SELECT name, hash FROM works WHERE deleting = 0").map {
                    (name: $0["name"] as String, hash: $0["hash"] as String)
                }
                let digest = BundleStatement.stateDigest(hashes)
                guard digest == statement.stateDigest else {
                    throw CairnError(
                        .bundleRejected,
                        "bundle \(statement.revision) leads to state \(digest), not the signed \(statement.stateDigest); nothing committed")
                }
                try Self.setMeta(db, "verified", try CairnJSON.string(VerifiedState(statement: statement, signature: signature)))
            }
            try Self.weighDeletions(
                db, bundle: bundle, brake: brake, regressed: regressed, now: now, before: (worksBefore, objectsBefore),
                removed: (removedWorks, removedObjects), changed: &changed)
            try Self.setMeta(db, "revision", String(bundle.revision))
            return changed
        }
    }

    /// Re-reads every cached work, recomputes the state digest and checks it against the last signed statement.
    /// Returns nil when the cache is intact, else what is wrong.
    public func verifyState(signingKey: String?, cluster: String) throws -> String? {
        try pool.read { db in
            guard let text = try Self.meta(db, "verified") else {
                let count = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM works WHERE deleting = 0") ?? 0
                return count == 0 ? nil : "the cache holds works but no signed statement"
            }
            let verified = try CairnJSON.decode(VerifiedState.self, from: Data(text.utf8), what: "verified state")
            guard let signingKey, verified.statement.cluster == cluster, verified.statement.verify(signature: verified.signature, publicKey: signingKey) else {
                return "the signed statement in the cache does not verify"
            }
            guard String(verified.statement.revision) == (try Self.meta(db, "revision")) else {
                return "the cached revision is not the signed one"
            }
            var hashes = [(name: String, hash: String)]()
            for row in try Row.fetchAll(db, sql: "SELECT name, body FROM works WHERE deleting = 0") {
                let work = try CairnJSON.decode(ManifestWork.self, from: Data((row["body"] as String).utf8), what: "cached work")
                guard work.name == row["name"] as String else { return "cached work \(row["name"] as String) was renamed" }
                hashes.append((work.name, try BundleStatement.workHash(work)))
            }
            let digest = BundleStatement.stateDigest(hashes)
            return digest == verified.statement.stateDigest ? nil : "the cached works do not match the signed state (\(digest))"
        }
    }

    /// Forgets the revision so that the next pull asks for a full bundle.
    public func forgetRevision() throws {
        try pool.write { db in try db.execute(sql: "DELETE FROM meta WHERE key IN ('revision', 'verified')") }
    }

    public func works() throws -> [CachedWork] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT body, deleting FROM works ORDER BY name").map { row in
                CachedWork(
                    work: try CairnJSON.decode(ManifestWork.self, from: Data((row["body"] as String).utf8), what: "cached work"),
                    deleting: row["deleting"])
            }
        }
    }

    // MARK: Inventory

    /// What the agent applied, by work.
    public func inventory() throws -> [String: [ManifestKey: InventoryEntry]] {
        try pool.read { db in
            var result = [String: [ManifestKey: InventoryEntry]]()
            for row in try Row.fetchAll(db, sql: "SELECT work, manifest_key, uid FROM inventory") {
                let key = try CairnJSON.decode(ManifestKey.self, from: Data((row["manifest_key"] as String).utf8), what: "inventory key")
                result[row["work"], default: [:]][key] = InventoryEntry(key: key, uid: row["uid"])
            }
            return result
        }
    }

    public func recordApplied(work: String, entries: [InventoryEntry]) throws {
        guard !entries.isEmpty else { return }
        try pool.write { db in
            for entry in entries {
                try db.execute(
                    sql: "INSERT OR REPLACE INTO inventory (work, key, manifest_key, uid) VALUES (?, ?, ?, ?)",
                    arguments: [work, entry.key.id, try CairnJSON.string(entry.key), entry.uid])
            }
        }
    }

    public func forget(work: String, keys: [ManifestKey]) throws {
        guard !keys.isEmpty else { return }
        try pool.write { db in
            for key in keys {
                try db.execute(sql: "DELETE FROM inventory WHERE work = ? AND key = ?", arguments: [work, key.id])
            }
        }
    }

    /// Drops a deleted work and queues the report that it is gone, in one transaction.
    public func finishDeletion(work: String, generation: Int64) throws {
        try pool.write { db in
            try db.execute(sql: "DELETE FROM inventory WHERE work = ?", arguments: [work])
            try db.execute(sql: "DELETE FROM works WHERE name = ? AND deleting = 1", arguments: [work])
            try Self.enqueue(db, WorkStatusUpdate(name: work, observedGeneration: generation, status: nil, deleted: true))
        }
    }

}

public struct CachedWork: Sendable {
    public var work: ManifestWork
    /// The hub removed it; its objects are being deleted (or orphaned).
    public var deleting: Bool
}

public struct InventoryEntry: Sendable, Equatable {
    public var key: ManifestKey
    public var uid: String?
    public init(key: ManifestKey, uid: String?) {
        self.key = key
        self.uid = uid
    }
}

/// The last statement the hub signed for what the cache holds.
struct VerifiedState: Codable {
    var statement: BundleStatement
    var signature: String
}
