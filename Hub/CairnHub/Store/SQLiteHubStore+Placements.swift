import CairnCommon
import Foundation
import GRDB

extension SQLiteHubStore {
    public func setTaint(cluster name: String, taint: Taint?, key: String, now: Date) async throws -> ManagedCluster {
        try await pool.write { db in
            let cluster = try Self.requireCluster(db, name)
            // Only the administrator's taints are stored; the hub's own are derived when the cluster is read.
            var taints = (cluster.spec.taints ?? []).filter { $0.key != key && !$0.key.hasPrefix("cairn.io/") }
            if var taint {
                taint.timeAdded = now
                taints.append(taint)
            }
            try db.execute(sql: "UPDATE clusters SET taints = ? WHERE name = ?", arguments: [try Self.json(taints), name])
            return try Self.requireCluster(db, name)
        }
    }

    public func applyPlacement(_ placement: Placement, now: Date) async throws -> Placement {
        try await pool.write { db in
            let spec = try Self.json(placement.spec)
            if let existing = try Row.fetchOne(db, sql: "SELECT * FROM placements WHERE name = ?", arguments: [placement.name]) {
                if existing["spec"] != spec {
                    try db.execute(
                        sql: "UPDATE placements SET spec = ?, api_version = ?, generation = generation + 1 WHERE name = ?",
                        arguments: [spec, placement.apiVersion, placement.name])
                }
            } else {
                try db.execute(
                    sql: "INSERT INTO placements (name, uid, generation, api_version, spec, created_at) VALUES (?, ?, 1, ?, ?, ?)",
                    arguments: [placement.name, UUID().uuidString.lowercased(), placement.apiVersion, spec, now.timeIntervalSince1970])
            }
            return try Self.requirePlacement(db, placement.name)
        }
    }

    public func placement(named name: String) async throws -> Placement? {
        try await pool.read { db in try Row.fetchOne(db, sql: "SELECT * FROM placements WHERE name = ?", arguments: [name]).map(Self.placement(from:)) }
    }

    public func placements() async throws -> [Placement] {
        try await pool.read { db in try Row.fetchAll(db, sql: "SELECT * FROM placements ORDER BY name").map(Self.placement(from:)) }
    }

    public func deletePlacement(named name: String) async throws {
        try await pool.write { db in
            try db.execute(sql: "DELETE FROM placements WHERE name = ?", arguments: [name])
            guard db.changesCount > 0 else { throw CairnError(.notFound, "placement \(name) not found", field: "name") }
        }
    }

    public func setDecisions(placement name: String, status: Placement.Status, now: Date) async throws -> Bool {
        try await pool.write { db in
            let placement = try Self.requirePlacement(db, name)
            let before = Set((placement.status?.decisions ?? []).map(\.clusterName))
            let after = Set(status.decisions.map(\.clusterName))
            var merged = status
            var conditions = placement.status?.conditions ?? []
            for condition in status.conditions { conditions.set(condition) }
            merged.conditions = conditions
            if let old = placement.status, old.decisions == merged.decisions, old.conditions.sameState(as: merged.conditions) { return false }
            try db.execute(sql: "UPDATE placements SET status = ? WHERE name = ?", arguments: [try Self.json(merged), name])
            guard before != after else { return false }
            let added = after.subtracting(before).sorted(), removed = before.subtracting(after).sorted()
            var message = "decisions: \(after.isEmpty ? "none" : after.sorted().joined(separator: ", "))"
            if !added.isEmpty { message += "; added \(added.joined(separator: ", "))" }
            if !removed.isEmpty { message += "; removed \(removed.joined(separator: ", "))" }
            try Self.insert(db, Event(time: now, object: "Placement/\(name)", reason: "DecisionsChanged", message: message))
            return true
        }
    }

    public func recordEvent(_ event: Event) async throws {
        try await pool.write { db in try Self.insert(db, event) }
    }

    public func events(object: String?, limit: Int) async throws -> [Event] {
        try await pool.read { db in
            let rows: [Row]
            if let object {
                rows = try Row.fetchAll(db, sql: "SELECT * FROM events WHERE object = ? ORDER BY id DESC LIMIT ?", arguments: [object, limit])
            } else {
                rows = try Row.fetchAll(db, sql: "SELECT * FROM events ORDER BY id DESC LIMIT ?", arguments: [limit])
            }
            return rows.map { Event(time: Date(timeIntervalSince1970: $0["time"]), object: $0["object"], reason: $0["reason"], message: $0["message"]) }
        }
    }

    static func insert(_ db: Database, _ event: Event) throws {
        try db.execute(
            sql: "INSERT INTO events (time, object, reason, message) VALUES (?, ?, ?, ?)",
            arguments: [event.time.timeIntervalSince1970, event.object, event.reason, event.message])
    }

    static func requirePlacement(_ db: Database, _ name: String) throws -> Placement {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM placements WHERE name = ?", arguments: [name]) else {
            throw CairnError(.notFound, "placement \(name) not found", field: "name")
        }
        return try placement(from: row)
    }

    /// Name, uid, generation and creation time, as the placements and worksets tables keep them.
    static func metadata(from row: Row) -> ObjectMeta {
        var metadata = ObjectMeta(name: row["name"])
        metadata.uid = row["uid"]
        metadata.generation = row["generation"]
        metadata.creationTimestamp = Date(timeIntervalSince1970: row["created_at"])
        return metadata
    }

    static func placement(from row: Row) throws -> Placement {
        var placement = Placement(
            metadata: metadata(from: row), spec: try decode(Placement.Spec.self, row["spec"]),
            status: try (row["status"] as String?).map { try decode(Placement.Status.self, $0) })
        placement.apiVersion = row["api_version"]
        return placement
    }
}
