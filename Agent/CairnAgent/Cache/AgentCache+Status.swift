import CairnCommon
import Foundation
import GRDB

/// The status outbox (the latest state per work) and the journal of transitions behind it.
extension AgentCache {
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
                let dropped = try journalDropped(db) + count - journalLimit
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
            let dropped = try Self.journalDropped(db)
            return (transitions, dropped)
        }
    }

    /// The hub has the journal through `sequence` and the drop count it was told.
    public func acknowledgeJournal(through sequence: Int64?, dropped: Int) throws {
        try pool.write { db in
            if let sequence { try db.execute(sql: "DELETE FROM journal WHERE seq <= ?", arguments: [sequence]) }
            if dropped > 0 {
                let now = try Self.journalDropped(db)
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

    static func journalDropped(_ db: Database) throws -> Int {
        try meta(db, "journal_dropped").flatMap { Int($0) } ?? 0
    }
}
