import CairnCommon
import Foundation
import GRDB
import Synchronization

/// The embedded store: one SQLite file in WAL mode, written with synchronous=FULL so an acknowledged write
/// survives a crash or power loss.
public struct SQLiteHubStore: HubStore {
    let pool: DatabasePool
    /// A connection of its own for `readHere`.
    let nearby: DatabaseQueue
    public let changes: RevisionNotifier
    /// Lease times not yet written (see `recordHeartbeat`).
    let heartbeats = HeartbeatTimes()
    /// Status reports, committed together when they arrive together.
    let statusReports: GroupCommit<StatusWrite, Void>
    /// Administrators' work writes and the audit records of their requests, likewise.
    let workWrites: GroupCommit<(work: ManifestWork, cluster: String, now: Date), (ManifestWork, changed: Bool)>
    let audits: GroupCommit<AuditEntry, Void>
    /// Clusters' access and unchanged heartbeats, kept between agents' requests.
    let memo = ClusterMemo()
    /// Administrators' tokens' roles, likewise.
    let adminRoles = AdminRoleMemo()

    public init(path: String, changes: RevisionNotifier = RevisionNotifier()) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        pool = try DatabasePool(path: path, configuration: configuration)
        self.changes = changes
        statusReports = GroupCommit(pool: pool, write: Self.record)
        workWrites = GroupCommit(pool: pool) { db, write in try Self.apply(db, write.work, cluster: write.cluster, now: write.now) }
        audits = GroupCommit(pool: pool, write: Self.insert)
        try Self.migrator.migrate(pool)
        pool.add(transactionObserver: memo, extent: .databaseLifetime)
        pool.add(transactionObserver: adminRoles, extent: .databaseLifetime)
        var readOnly = Configuration()
        readOnly.readonly = true
        readOnly.busyMode = .timeout(10)
        nearby = try DatabaseQueue(path: path, configuration: readOnly)
    }

    /// A read of a few rows, done on the calling thread rather than handed to a reader's queue and back: for the
    /// reads every request makes, those two thread wake-ups cost more than the read. Not for reads that can take
    /// long — the caller is an event loop, its connections wait.
    ///
    /// On a connection of its own, never the pool's: an event loop blocked waiting for one of the pool's readers
    /// could wait for a reader held by a task that needs that very event loop to finish (seen: 3,000 sites
    /// enrolling hung the hub). Here a caller waits at most for another event loop's short read.
    func readHere<T>(_ body: (Database) throws -> T) throws -> T {
        try nearby.read(body)
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: clusters, works, tokens") { db in
            try db.execute(
                sql: """
                    CREATE TABLE admin_tokens (
                        hash TEXT PRIMARY KEY, role TEXT NOT NULL, created_at REAL NOT NULL);
                    CREATE TABLE enrolment_tokens (
                        id TEXT PRIMARY KEY, secret_hash TEXT NOT NULL, auto_approve INTEGER NOT NULL,
                        labels TEXT NOT NULL, expires_at REAL NOT NULL, max_uses INTEGER,
                        uses INTEGER NOT NULL DEFAULT 0 CHECK (uses >= 0),
                        revoked INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL);
                    CREATE TABLE clusters (
                        name TEXT PRIMARY KEY, uid TEXT NOT NULL, labels TEXT NOT NULL,
                        enrolment TEXT NOT NULL CHECK (enrolment IN ('Pending', 'Accepted', 'Denied')),
                        credential_hash TEXT NOT NULL, token_id TEXT, conditions TEXT NOT NULL,
                        claims TEXT NOT NULL, allocatable TEXT NOT NULL, taints TEXT NOT NULL,
                        last_heartbeat REAL, revision INTEGER NOT NULL DEFAULT 0,
                        tombstone_horizon INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL);
                    CREATE TABLE works (
                        cluster TEXT NOT NULL REFERENCES clusters(name) ON DELETE CASCADE,
                        name TEXT NOT NULL, uid TEXT NOT NULL, labels TEXT, annotations TEXT,
                        generation INTEGER NOT NULL, spec TEXT NOT NULL, revision INTEGER NOT NULL,
                        status TEXT, created_at REAL NOT NULL, deleting_at REAL,
                        PRIMARY KEY (cluster, name));
                    CREATE INDEX works_by_revision ON works(cluster, revision);
                    CREATE TABLE tombstones (
                        cluster TEXT NOT NULL REFERENCES clusters(name) ON DELETE CASCADE,
                        name TEXT NOT NULL, revision INTEGER NOT NULL, created_at REAL NOT NULL,
                        PRIMARY KEY (cluster, name));
                    """)
        }
        migrator.registerMigration("v2: cluster keys and certificates, work hashes") { db in
            try db.execute(
                sql: """
                    ALTER TABLE clusters ADD COLUMN key_hash TEXT NOT NULL DEFAULT '';
                    ALTER TABLE clusters ADD COLUMN csr TEXT NOT NULL DEFAULT '';
                    ALTER TABLE clusters ADD COLUMN certificate TEXT;
                    ALTER TABLE works ADD COLUMN bundle_hash TEXT NOT NULL DEFAULT '';
                    """)
        }
        migrator.registerMigration("v3: audit log") { db in
            try db.execute(
                sql: """
                    CREATE TABLE audit (
                        id INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, actor TEXT NOT NULL,
                        action TEXT NOT NULL, status INTEGER NOT NULL, result TEXT NOT NULL);
                    """)
        }
        migrator.registerMigration("v4: held enrolment conflicts") { db in
            try db.execute(
                sql: """
                    CREATE TABLE enrolment_conflicts (
                        cluster TEXT NOT NULL REFERENCES clusters(name) ON DELETE CASCADE,
                        credential_hash TEXT NOT NULL, key_hash TEXT NOT NULL, source TEXT NOT NULL, time REAL NOT NULL,
                        PRIMARY KEY (cluster, credential_hash));
                    """)
        }
        migrator.registerMigration("v5: placements and events") { db in
            try db.execute(
                sql: """
                    CREATE TABLE placements (
                        name TEXT PRIMARY KEY, uid TEXT NOT NULL, generation INTEGER NOT NULL, api_version TEXT NOT NULL,
                        spec TEXT NOT NULL, status TEXT, created_at REAL NOT NULL);
                    CREATE TABLE events (
                        id INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, object TEXT NOT NULL,
                        reason TEXT NOT NULL, message TEXT NOT NULL);
                    CREATE INDEX events_by_object ON events(object, id);
                    """)
        }
        migrator.registerMigration("v6: worksets") { db in
            try db.execute(
                sql: """
                    CREATE TABLE worksets (
                        name TEXT PRIMARY KEY, uid TEXT NOT NULL, generation INTEGER NOT NULL, api_version TEXT NOT NULL,
                        kind TEXT NOT NULL, spec TEXT NOT NULL, status TEXT, created_at REAL NOT NULL);
                    CREATE TABLE workset_revisions (
                        name TEXT NOT NULL REFERENCES worksets(name) ON DELETE CASCADE, generation INTEGER NOT NULL,
                        spec TEXT NOT NULL, PRIMARY KEY (name, generation));
                    CREATE INDEX works_by_workset ON works(json_extract(labels, '$."cairn.io/workset"'));
                    """)
        }
        migrator.registerMigration("v7: released deletions") { db in
            try db.execute(sql: "ALTER TABLE clusters ADD COLUMN deletions_released_through INTEGER NOT NULL DEFAULT 0")
        }
        migrator.registerMigration("v8: status transitions") { db in
            try db.execute(sql: "ALTER TABLE clusters ADD COLUMN last_transition INTEGER NOT NULL DEFAULT 0")
        }
        // The lease check (every few seconds: how many clusters are accepted, which went silent) read every cluster
        // row, one of the two inside the writer's transaction — at 10,000 sites ~13 ms each, a stall of the one
        // writer every 5 s. With this index each is a walk of small index entries or a range seek (0.3 / 0.01 ms);
        // writing the lease times once a second moves their entries too (~1 ms more per 250 heartbeats).
        migrator.registerMigration("v9: lease index") { db in
            try db.execute(sql: "CREATE INDEX clusters_by_lease ON clusters(enrolment, last_heartbeat)")
        }
        return migrator
    }

    // MARK: Audit

    public func recordAudit(_ entry: AuditEntry) async throws {
        try await audits.submit(entry)
    }

    static func insert(_ db: Database, _ entry: AuditEntry) throws {
        try db.cachedStatement(sql: "INSERT INTO audit (time, actor, action, status, result) VALUES (?, ?, ?, ?, ?)").execute(
            arguments: [entry.time.timeIntervalSince1970, entry.actor, entry.action, entry.status, entry.result])
    }

    public func audit(limit: Int) async throws -> [AuditEntry] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM audit ORDER BY id DESC LIMIT ?", arguments: [limit]).map {
                AuditEntry(time: Date(timeIntervalSince1970: $0["time"]), actor: $0["actor"], action: $0["action"], status: $0["status"], result: $0["result"])
            }
        }
    }

    // MARK: Administrators

    public func addAdminToken(hash: String, role: AdminRole, now: Date) async throws {
        try await pool.write { db in
            try db.execute(
                sql: "INSERT OR REPLACE INTO admin_tokens (hash, role, created_at) VALUES (?, ?, ?)",
                arguments: [hash, role.rawValue, now.timeIntervalSince1970])
        }
    }

    public func adminRole(tokenHash: String) async throws -> AdminRole? {
        if let role = adminRoles.role(tokenHash) { return role }
        let generation = adminRoles.generation
        let role = try readHere { db in
            try String.fetchOne(db.cachedStatement(sql: "SELECT role FROM admin_tokens WHERE hash = ?"), arguments: [tokenHash])
                .flatMap(AdminRole.init(rawValue:))
        }
        if let role { adminRoles.remember(role, of: tokenHash, readAt: generation) }
        return role
    }

    // MARK: Enrolment tokens

    public func createToken(_ token: EnrolmentToken, secretHash: String) async throws {
        try await pool.write { db in
            try db.execute(
                sql: """
                    INSERT INTO enrolment_tokens (id, secret_hash, auto_approve, labels, expires_at, max_uses, created_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    token.id, secretHash, token.autoApprove, try Self.json(token.labels),
                    token.expiresAt.timeIntervalSince1970, token.maxUses, token.createdAt.timeIntervalSince1970,
                ])
        }
    }

    public func tokens() async throws -> [EnrolmentToken] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM enrolment_tokens ORDER BY created_at, id").map(Self.token(from:))
        }
    }

    public func revokeToken(id: String) async throws -> EnrolmentToken {
        try await pool.write { db in
            try db.execute(sql: "UPDATE enrolment_tokens SET revoked = 1 WHERE id = ?", arguments: [id])
            guard db.changesCount > 0,
                let row = try Row.fetchOne(db, sql: "SELECT * FROM enrolment_tokens WHERE id = ?", arguments: [id])
            else { throw CairnError(.notFound, "token \(id) not found", field: "id") }
            return try Self.token(from: row)
        }
    }

    static func token(from row: Row) throws -> EnrolmentToken {
        EnrolmentToken(
            id: row["id"], autoApprove: row["auto_approve"], labels: try decode([String: String].self, row["labels"]),
            expiresAt: Date(timeIntervalSince1970: row["expires_at"]), maxUses: row["max_uses"], uses: row["uses"],
            revoked: row["revoked"], createdAt: Date(timeIntervalSince1970: row["created_at"]))
    }

    // MARK: Helpers

    /// Lease times noted in memory until they are written together, at most a second later.
    final class HeartbeatTimes: Sendable {
        private let state = Mutex<(times: [String: Double], since: Double?)>(([:], nil))

        /// Notes a heartbeat; true when the oldest one waiting is a second old, so it is time to write them.
        func note(_ cluster: String, at time: Date) -> Bool {
            let seconds = time.timeIntervalSince1970
            return state.withLock { state in
                state.times[cluster] = max(state.times[cluster] ?? 0, seconds)
                let since = state.since ?? seconds
                state.since = since
                return seconds - since >= 1
            }
        }

        func take() -> [String: Double] {
            state.withLock { state in
                defer { state = ([:], nil) }
                return state.times
            }
        }
    }

    static func json<T: Encodable>(_ value: T) throws -> String {
        try CairnJSON.string(value)
    }

    static func decode<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
        try CairnJSON.decode(type, from: Data(text.utf8), what: "stored \(type)")
    }
}
