import CairnCommon
import Foundation
import GRDB

/// The built-in simulated cluster: a product feature for demos, tests and scale runs. It keeps its objects in
/// a SQLite file, brings workloads to readiness after a delay, accepts any kind, and lets an operator (or a
/// test) change objects behind the agent's back to see drift corrected.
public struct SimulatedCluster: ClusterAdapter {
    public struct Configuration: Sendable {
        /// How long a workload takes to become ready after it is created or its spec changes.
        public var readyDelay: Double = 1
        public var platform: String = "kubernetes"
        public var allocatableCPU: String = "4"
        public var allocatableMemory: String = "8Gi"
        public var nodes: Int = 1
        public init() {}
    }

    let pool: DatabasePool
    public let configuration: Configuration

    public init(path: String, configuration: Configuration = Configuration()) throws {
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        var dbConfiguration = GRDB.Configuration()
        dbConfiguration.busyMode = .timeout(10)
        dbConfiguration.prepareDatabase { db in try db.execute(sql: "PRAGMA cache_size = -128") }
        dbConfiguration.maximumReaderCount = 2
        pool = try DatabasePool(path: path, configuration: dbConfiguration)
        self.configuration = configuration
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: objects") { db in
            try db.execute(
                sql: """
                    CREATE TABLE objects (
                        id TEXT PRIMARY KEY, manifest_key TEXT NOT NULL, uid TEXT NOT NULL, generation INTEGER NOT NULL,
                        resource_version INTEGER NOT NULL, body TEXT NOT NULL, created_at REAL NOT NULL,
                        ready_at REAL NOT NULL, ready_before INTEGER NOT NULL DEFAULT 0);
                    """)
        }
        try migrator.migrate(pool)
    }

    public func apply(_ manifest: JSONValue, key: ManifestKey, strategy update: UpdateStrategy) async throws -> ApplyOutcome {
        let strategy = update.type
        var withoutStatus = manifest
        withoutStatus["status"] = nil
        let desired = withoutStatus
        let desiredBody = try CairnJSON.string(desired)
        let ignoresFields = !update.ignoredPaths.isEmpty
        let now = Date().timeIntervalSince1970
        let delay = configuration.readyDelay
        return try await pool.write { db in
            let existing = try Row.fetchOne(db, sql: "SELECT * FROM objects WHERE id = ?", arguments: [key.id])
            if let existing {
                let uid: String = existing["uid"]
                var body = desiredBody
                var written = desired
                var old: JSONValue?
                if ignoresFields {
                    old = try CairnJSON.decode(JSONValue.self, from: Data((existing["body"] as String).utf8), what: "object")
                    written = update.respectingIgnoredFields(desired, live: old, keep: true)
                    body = try CairnJSON.string(written)
                }
                if strategy == .readOnly || strategy == .createOnly || existing["body"] == body {
                    return ApplyOutcome(uid: uid, changed: false)
                }
                let previous = try old ?? CairnJSON.decode(JSONValue.self, from: Data((existing["body"] as String).utf8), what: "object")
                let live = Self.live(row: existing, now: now, nodes: configuration.nodes)
                let specChanged = previous["spec"] != written["spec"]
                let readyNow = Self.readyReplicas(live)
                try db.execute(
                    sql: """
                        UPDATE objects SET body = ?, generation = generation + ?, resource_version = resource_version + 1,
                            ready_at = CASE WHEN ? THEN ? ELSE ready_at END, ready_before = ? WHERE id = ?
                        """,
                    arguments: [body, specChanged ? 1 : 0, specChanged, now + delay, readyNow, key.id])
                return ApplyOutcome(uid: uid, changed: true)
            }
            if strategy == .readOnly {
                throw AdapterError(reason: "NotFound", message: "\(key) does not exist and its update strategy is ReadOnly")
            }
            let uid = UUID().uuidString.lowercased()
            try db.execute(
                sql: """
                    INSERT INTO objects (id, manifest_key, uid, generation, resource_version, body, created_at, ready_at)
                    VALUES (?, ?, ?, 1, 1, ?, ?, ?)
                    """,
                arguments: [key.id, try CairnJSON.string(key), uid, desiredBody, now, now + delay])
            return ApplyOutcome(uid: uid, changed: true)
        }
    }

    public func get(_ key: ManifestKey) async throws -> JSONValue? {
        let now = Date().timeIntervalSince1970
        return try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM objects WHERE id = ?", arguments: [key.id]).map {
                Self.live(row: $0, now: now, nodes: configuration.nodes)
            }
        }
    }

    public func delete(_ key: ManifestKey, uid: String?, propagation: PropagationPolicy) async throws -> DeleteOutcome {
        try await pool.write { db in
            guard let current = try String.fetchOne(db, sql: "SELECT uid FROM objects WHERE id = ?", arguments: [key.id]) else {
                return .alreadyGone
            }
            if let uid, uid != current { return .notOurs }
            try db.execute(sql: "DELETE FROM objects WHERE id = ?", arguments: [key.id])
            return .deleted
        }
    }

    /// SQLite's own verdict on the file ("ok" when sound): what a crash must never break.
    public func integrityCheck() throws -> String {
        try pool.read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check").joined(separator: "; ") }
    }

    public func objects() async throws -> [JSONValue] {
        let now = Date().timeIntervalSince1970
        return try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM objects ORDER BY id").map { Self.live(row: $0, now: now, nodes: configuration.nodes) }
        }
    }

    /// The keys of the objects on the site in the order they were created.
    public func creationOrder() async throws -> [ManifestKey] {
        try await pool.read { db in
            try String.fetchAll(db, sql: "SELECT manifest_key FROM objects ORDER BY rowid").map {
                try CairnJSON.decode(ManifestKey.self, from: Data($0.utf8), what: "object key")
            }
        }
    }

    public func claims() async throws -> SiteClaims {
        SiteClaims(
            claims: [
                ClusterClaim(name: "platform", value: configuration.platform),
                ClusterClaim(name: "adapter", value: "simulated"),
                ClusterClaim(name: "nodes", value: String(configuration.nodes)),
            ],
            allocatable: ["cpu": configuration.allocatableCPU, "memory": configuration.allocatableMemory])
    }

    // MARK: Changes behind the agent's back (drift)

    /// Rewrites a live object as someone on the site might (kubectl edit), bypassing the agent.
    public func tamper(_ key: ManifestKey, _ change: @Sendable (inout JSONValue) -> Void) async throws {
        try await pool.write { db in
            guard let text = try String.fetchOne(db, sql: "SELECT body FROM objects WHERE id = ?", arguments: [key.id]) else {
                throw AdapterError(reason: "NotFound", message: "\(key) does not exist")
            }
            var body = try CairnJSON.decode(JSONValue.self, from: Data(text.utf8), what: "object")
            change(&body)
            try db.execute(
                sql: "UPDATE objects SET body = ?, generation = generation + 1, resource_version = resource_version + 1 WHERE id = ?",
                arguments: [try CairnJSON.string(body), key.id])
        }
    }

    /// Deletes a live object as someone on the site might (kubectl delete), bypassing the agent.
    public func remove(_ key: ManifestKey) async throws {
        try await pool.write { db in try db.execute(sql: "DELETE FROM objects WHERE id = ?", arguments: [key.id]) }
    }

    // MARK: Live view

    static func live(row: Row, now: Double, nodes: Int) -> JSONValue {
        var object = (try? CairnJSON.decode(JSONValue.self, from: Data((row["body"] as String).utf8), what: "object")) ?? .object([:])
        let generation: Int64 = row["generation"]
        var metadata = object["metadata"] ?? .object([:])
        metadata["uid"] = .string(row["uid"])
        metadata["generation"] = .int(generation)
        metadata["resourceVersion"] = .string(String(row["resource_version"] as Int64))
        metadata["creationTimestamp"] = .string(RFC3339.string(from: Date(timeIntervalSince1970: row["created_at"])))
        object["metadata"] = metadata
        let ready = now >= (row["ready_at"] as Double)
        let readyBefore: Int64 = row["ready_before"]
        let kind = object["kind"]?.stringValue ?? ""
        switch kind {
        case "Deployment", "StatefulSet", "ReplicaSet":
            let replicas = object["spec"]?["replicas"]?.intValue ?? 1
            let readyCount = ready ? replicas : min(readyBefore, replicas)
            object["status"] = [
                "observedGeneration": .int(generation), "replicas": .int(replicas), "readyReplicas": .int(readyCount),
                "availableReplicas": .int(readyCount), "updatedReplicas": .int(ready ? replicas : 0),
                "currentReplicas": .int(readyCount),
            ]
        case "DaemonSet":
            let count = Int64(nodes)
            object["status"] = [
                "observedGeneration": .int(generation), "desiredNumberScheduled": .int(count),
                "currentNumberScheduled": .int(count), "numberReady": .int(ready ? count : 0),
                "numberAvailable": .int(ready ? count : 0), "updatedNumberScheduled": .int(ready ? count : 0),
            ]
        case "Job":
            object["status"] =
                ready
                ? ["succeeded": 1, "conditions": [["type": "Complete", "status": "True"]]]
                : ["active": 1]
        case "Pod":
            object["status"] = [
                "phase": ready ? "Running" : "Pending",
                "conditions": [["type": "Ready", "status": .string(ready ? "True" : "False")]],
            ]
        default:
            break
        }
        return object
    }

    static func readyReplicas(_ live: JSONValue) -> Int64 {
        live["status"]?["readyReplicas"]?.intValue ?? live["status"]?["numberReady"]?.intValue ?? 0
    }
}
