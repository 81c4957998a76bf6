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
        }
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
            guard let text = try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'identity'") else { return nil }
            return try CairnJSON.decode(AgentIdentity.self, from: Data(text.utf8), what: "cached identity")
        }
    }

    public func saveIdentity(_ identity: AgentIdentity) throws {
        try pool.write { db in try Self.setMeta(db, "identity", try CairnJSON.string(identity)) }
    }

    /// The revision of the last bundle committed, nil before the first.
    public func revision() throws -> Int64? {
        try pool.read { db in try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'revision'").flatMap { Int64($0) } }
    }

    public func recordContact(_ date: Date = Date()) throws {
        try pool.write { db in try Self.setMeta(db, "last_contact", RFC3339.string(from: date)) }
    }

    public func lastContact() throws -> Date? {
        try pool.read { db in try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'last_contact'").flatMap(RFC3339.date(from:)) }
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
            /// A work leaving counts with its objects, unless it orphans them (then nothing leaves the site).
            func leave(_ name: String) throws {
                guard let body = try String.fetchOne(db, sql: "SELECT body FROM works WHERE name = ? AND deleting = 0", arguments: [name]) else { return }
                let work = try CairnJSON.decode(ManifestWork.self, from: Data(body.utf8), what: "cached work")
                try db.execute(sql: "UPDATE works SET deleting = 1 WHERE name = ?", arguments: [name])
                changed.insert(name)
                guard work.spec.propagationPolicy != .orphan else { return }
                removedWorks += 1
                removedObjects += try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM inventory WHERE work = ?", arguments: [name]) ?? 0
            }
            let present = Set(bundle.works.map(\.name))
            if bundle.isFull {
                for name in try String.fetchAll(db, sql: "SELECT name FROM works WHERE deleting = 0") where !present.contains(name) {
                    try leave(name)
                }
            }
            for tombstone in bundle.tombstones where !present.contains(tombstone.name) {
                try leave(tombstone.name)
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
            var hold = try Self.deletionHold(db)
            var window = try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'deletion_window'").map {
                try CairnJSON.decode(DeletionWindow.self, from: Data($0.utf8), what: "deletion window")
            }
            if let current = hold, let released = bundle.deletionsReleasedThrough, released >= current.revision {
                // Released: every work is looked at again, so what was held is carried out; the window starts over.
                hold = nil
                window = nil
                try db.execute(sql: "DELETE FROM meta WHERE key IN ('deletion_hold', 'deletion_window')")
                changed.formUnion(try String.fetchAll(db, sql: "SELECT name FROM works"))
            }
            if var open = window, now.timeIntervalSince1970 - open.opened <= brake.window {
                open.peakWorks = max(open.peakWorks, worksBefore)
                open.peakObjects = max(open.peakObjects, objectsBefore)
                window = open
            } else {
                window = nil
            }
            if removedWorks + removedObjects > 0 {
                let weighed = window ?? DeletionWindow(opened: now.timeIntervalSince1970, peakWorks: worksBefore, peakObjects: objectsBefore)
                let shrinkWorks = weighed.peakWorks - (worksBefore - removedWorks)
                let shrinkObjects = weighed.peakObjects - (objectsBefore - removedObjects)
                window = weighed
                if hold != nil || regressed || brake.trips(removing: shrinkWorks, of: weighed.peakWorks) || brake.trips(removing: shrinkObjects, of: weighed.peakObjects) {
                    let held = DeletionHold(
                        revision: bundle.revision, reason: regressed ? .hubWentBack : (hold?.reason ?? .massDeletion),
                        works: (hold?.works ?? 0) + removedWorks, objects: (hold?.objects ?? 0) + removedObjects,
                        deletedWorks: shrinkWorks, totalWorks: weighed.peakWorks, deletedObjects: shrinkObjects, totalObjects: weighed.peakObjects)
                    try Self.setMeta(db, "deletion_hold", try CairnJSON.string(held))
                }
            }
            if let window {
                try Self.setMeta(db, "deletion_window", try CairnJSON.string(window))
            } else {
                try db.execute(sql: "DELETE FROM meta WHERE key = 'deletion_window'")
            }
            try Self.setMeta(db, "revision", String(bundle.revision))
            return changed
        }
    }

    /// The deletions held by the brake, if any.
    public func deletionHold() throws -> DeletionHold? {
        try pool.read { db in try Self.deletionHold(db) }
    }

    static func deletionHold(_ db: Database) throws -> DeletionHold? {
        try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'deletion_hold'").map {
            try CairnJSON.decode(DeletionHold.self, from: Data($0.utf8), what: "deletion hold")
        }
    }

    /// Re-reads every cached work, recomputes the state digest and checks it against the last signed statement.
    /// Returns nil when the cache is intact, else what is wrong.
    public func verifyState(signingKey: String?, cluster: String) throws -> String? {
        try pool.read { db in
            guard let text = try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'verified'") else {
                let count = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM works WHERE deleting = 0") ?? 0
                return count == 0 ? nil : "the cache holds works but no signed statement"
            }
            let verified = try CairnJSON.decode(VerifiedState.self, from: Data(text.utf8), what: "verified state")
            guard let signingKey, verified.statement.cluster == cluster, verified.statement.verify(signature: verified.signature, publicKey: signingKey) else {
                return "the signed statement in the cache does not verify"
            }
            guard String(verified.statement.revision) == (try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'revision'")) else {
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

    // MARK: Status outbox

    /// The latest status recorded for each work, sent or not.
    public func latestStatuses() throws -> [String: WorkStatusUpdate] {
        try pool.read { db in
            var result = [String: WorkStatusUpdate]()
            for row in try Row.fetchAll(db, sql: "SELECT * FROM outbox") {
                result[row["work"]] = try Self.update(from: row)
            }
            return result
        }
    }

    public func enqueue(_ update: WorkStatusUpdate) throws {
        try pool.write { db in try Self.enqueue(db, update) }
    }

    /// How many transitions the journal keeps while the hub is out of reach; beyond it the oldest go, counted.
    public static let journalLimit = 1_000

    static func enqueue(_ db: Database, _ update: WorkStatusUpdate) throws {
        // Each work condition whose status changed since the last state recorded goes into the journal too.
        let previous = try String.fetchOne(db, sql: "SELECT status FROM outbox WHERE work = ?", arguments: [update.name]).flatMap {
            try? CairnJSON.decode(ManifestWork.Status.self, from: Data($0.utf8), what: "cached status")
        }
        let now = Date().timeIntervalSince1970
        var journaled = 0
        for condition in update.status?.conditions ?? [] where previous?.conditions[type: condition.type]?.status != condition.status {
            try db.execute(
                sql: "INSERT INTO journal (work, generation, time, type, status, reason) VALUES (?, ?, ?, ?, ?, ?)",
                arguments: [update.name, update.observedGeneration, now, condition.type, condition.status, condition.reason])
            journaled += 1
        }
        if update.deleted {
            try db.execute(
                sql: "INSERT INTO journal (work, generation, time, type, status, reason) VALUES (?, ?, ?, 'Deleted', 'True', 'WorkRemoved')",
                arguments: [update.name, update.observedGeneration, now])
            journaled += 1
        }
        if journaled > 0 {
            let count = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM journal") ?? 0
            if count > journalLimit {
                try db.execute(
                    sql: "DELETE FROM journal WHERE seq IN (SELECT seq FROM journal ORDER BY seq LIMIT ?)", arguments: [count - journalLimit])
                let dropped = (try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'journal_dropped'").flatMap { Int($0) } ?? 0) + count - journalLimit
                try setMeta(db, "journal_dropped", String(dropped))
            }
        }
        let seq = (try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM outbox") ?? 0) + 1
        try db.execute(
            sql: """
                INSERT INTO outbox (work, generation, status, deleted, seq) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT(work) DO UPDATE SET generation = excluded.generation, status = excluded.status,
                    deleted = excluded.deleted, seq = excluded.seq
                """,
            arguments: [
                update.name, update.observedGeneration,
                try update.status.map { try CairnJSON.string($0) }, update.deleted, seq,
            ])
    }

    /// Statuses not yet acknowledged by the hub, oldest first.
    public func unsent(limit: Int) throws -> [(seq: Int64, update: WorkStatusUpdate)] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM outbox WHERE seq > sent_seq ORDER BY seq LIMIT ?", arguments: [limit]).map {
                (seq: $0["seq"], update: try Self.update(from: $0))
            }
        }
    }

    /// Marks statuses acknowledged; a status rewritten since it was read stays unsent. Reports of deleted works
    /// leave the outbox once acknowledged.
    public func markSent(_ sent: [(seq: Int64, update: WorkStatusUpdate)]) throws {
        try pool.write { db in
            for item in sent {
                try db.execute(sql: "UPDATE outbox SET sent_seq = seq WHERE work = ? AND seq = ?", arguments: [item.update.name, item.seq])
                try db.execute(sql: "DELETE FROM outbox WHERE work = ? AND seq = ? AND deleted = 1", arguments: [item.update.name, item.seq])
            }
        }
    }

    /// Journal entries not yet acknowledged, oldest first, and how many were dropped since the last acknowledgement.
    public func journal(limit: Int) throws -> (transitions: [StatusTransition], dropped: Int) {
        try pool.read { db in
            let transitions = try Row.fetchAll(db, sql: "SELECT * FROM journal ORDER BY seq LIMIT ?", arguments: [limit]).map {
                StatusTransition(
                    sequence: $0["seq"], work: $0["work"], generation: $0["generation"], time: Date(timeIntervalSince1970: $0["time"]),
                    type: $0["type"], status: $0["status"], reason: $0["reason"])
            }
            let dropped = try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'journal_dropped'").flatMap { Int($0) } ?? 0
            return (transitions, dropped)
        }
    }

    /// The hub has the journal through `sequence` and the drop count it was told.
    public func acknowledgeJournal(through sequence: Int64?, dropped: Int) throws {
        try pool.write { db in
            if let sequence { try db.execute(sql: "DELETE FROM journal WHERE seq <= ?", arguments: [sequence]) }
            if dropped > 0 {
                let now = try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'journal_dropped'").flatMap { Int($0) } ?? 0
                try Self.setMeta(db, "journal_dropped", String(max(0, now - dropped)))
            }
        }
    }

    public func journalLength() throws -> Int {
        try pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM journal") ?? 0 }
    }

    public func outboxLength() throws -> Int {
        try pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM outbox WHERE seq > sent_seq") ?? 0 }
    }

    static func update(from row: Row) throws -> WorkStatusUpdate {
        WorkStatusUpdate(
            name: row["work"], observedGeneration: row["generation"],
            status: try (row["status"] as String?).map { try CairnJSON.decode(ManifestWork.Status.self, from: Data($0.utf8), what: "cached status") },
            deleted: row["deleted"])
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
