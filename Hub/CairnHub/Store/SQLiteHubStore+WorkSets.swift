import CairnCommon
import Foundation
import GRDB

extension SQLiteHubStore {
    public func applyWorkSet(_ workSet: WorkSet, now: Date) async throws -> WorkSet {
        try await pool.write { db in
            let spec = try Self.json(workSet.spec)
            if let existing = try Row.fetchOne(db, sql: "SELECT * FROM worksets WHERE name = ?", arguments: [workSet.name]) {
                if existing["spec"] != spec {
                    try db.execute(
                        sql: "UPDATE worksets SET spec = ?, api_version = ?, kind = ?, generation = generation + 1 WHERE name = ?",
                        arguments: [spec, workSet.apiVersion, workSet.kind, workSet.name])
                }
            } else {
                try db.execute(
                    sql: "INSERT INTO worksets (name, uid, generation, api_version, kind, spec, created_at) VALUES (?, ?, 1, ?, ?, ?, ?)",
                    arguments: [workSet.name, UUID().uuidString.lowercased(), workSet.apiVersion, workSet.kind, spec, now.timeIntervalSince1970])
            }
            let stored = try Self.requireWorkSet(db, workSet.name)
            try db.execute(
                sql: "INSERT OR IGNORE INTO workset_revisions (name, generation, spec) VALUES (?, ?, ?)",
                arguments: [stored.name, stored.metadata.generation ?? 1, spec])
            return stored
        }
    }

    public func workSet(named name: String) async throws -> WorkSet? {
        try await pool.read { db in try Row.fetchOne(db, sql: "SELECT * FROM worksets WHERE name = ?", arguments: [name]).map(Self.workSet(from:)) }
    }

    public func workSets() async throws -> [WorkSet] {
        try await pool.read { db in try Row.fetchAll(db, sql: "SELECT * FROM worksets ORDER BY name").map(Self.workSet(from:)) }
    }

    public func deleteWorkSet(named name: String) async throws {
        try await pool.write { db in
            try db.execute(sql: "DELETE FROM worksets WHERE name = ?", arguments: [name])
            guard db.changesCount > 0 else { throw CairnError(.notFound, "workset \(name) not found", field: "name") }
        }
    }

    public func setWorkSetStatus(_ name: String, status: WorkSet.Status) async throws {
        try await pool.write { db in
            try db.execute(sql: "UPDATE worksets SET status = ? WHERE name = ?", arguments: [try Self.json(status), name])
        }
    }

    public func workSetSpec(_ name: String, generation: Int64) async throws -> WorkSet.Spec? {
        try await pool.read { db in
            try String.fetchOne(db, sql: "SELECT spec FROM workset_revisions WHERE name = ? AND generation = ?", arguments: [name, generation])
                .map { try Self.decode(WorkSet.Spec.self, $0) }
        }
    }

    public func works(ofWorkSet name: String) async throws -> [String: ManifestWork] {
        try await pool.read { db in
            var result = [String: ManifestWork]()
            // Every rollout pass reads this for all of a WorkSet's clusters: the specs, most of each row, are left
            // out (a quarter of the hub's time went to decoding them while a rollout to 3,000 sites reported in).
            let rows = try Row.fetchAll(
                try db.cachedStatement(
                    sql: #"""
                        SELECT cluster, name, labels, annotations, generation, uid, created_at, deleting_at, status FROM works
                        WHERE json_extract(labels, '$."cairn.io/workset"') = ?
                        """#),
                arguments: [name])
            for row in rows {
                result[row["cluster"]] = try Self.work(from: row, cluster: row["cluster"], spec: false)
            }
            return result
        }
    }

    static func requireWorkSet(_ db: Database, _ name: String) throws -> WorkSet {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM worksets WHERE name = ?", arguments: [name]) else {
            throw CairnError(.notFound, "workset \(name) not found", field: "name")
        }
        return try workSet(from: row)
    }

    static func workSet(from row: Row) throws -> WorkSet {
        var workSet = WorkSet(
            metadata: metadata(from: row), spec: try decode(WorkSet.Spec.self, row["spec"]),
            status: try (row["status"] as String?).map { try decode(WorkSet.Status.self, $0) })
        workSet.apiVersion = row["api_version"]
        workSet.kind = row["kind"]
        return workSet
    }
}
