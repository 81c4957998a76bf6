import CairnCommon
import Foundation
import GRDB

extension SQLiteHubStore {
    /// One write, shaped for throughput (it is the API's hottest write): the cluster is only checked to exist, the
    /// work is read once, and what it becomes — with the hash bundles carry — is written in one statement and
    /// returned without reading it back. Statements are cached.
    public func applyWork(_ work: ManifestWork, cluster: String, now: Date) async throws -> ManifestWork {
        let (stored, changed) = try await workWrites.submit((work, cluster, now))
        if changed { changes.publish(cluster) }
        return stored
    }

    public func applyWorks(_ writes: [WorkWrite], now: Date) async throws -> [Result<ManifestWork, any Error>] {
        let outcomes = try await pool.write { db in
            writes.map { write in
                db.alone {
                    let applied = try Self.apply(db, write.work, cluster: write.cluster, now: now)
                    for event in write.events { try Self.insert(db, event) }
                    return applied
                }
            }
        }
        for (write, outcome) in zip(writes, outcomes) {
            if case .success((_, true)) = outcome { changes.publish(write.cluster) }
        }
        return outcomes.map { $0.map(\.0) }
    }

    /// The work as stored, and whether it changed.
    static func apply(_ db: Database, _ work: ManifestWork, cluster: String, now: Date) throws -> (ManifestWork, Bool) {
        try Self.requireClusterExists(db, cluster)
        let spec = try Self.json(work.spec)
        let labels = try work.metadata.labels.map(Self.json)
        let annotations = try work.metadata.annotations.map(Self.json)
        let existing = try Row.fetchOne(
            try db.cachedStatement(sql: "SELECT * FROM works WHERE cluster = ? AND name = ?"), arguments: [cluster, work.name])
        if let existing, existing["spec"] == spec, existing["labels"] == labels, existing["annotations"] == annotations,
            existing["deleting_at"] == nil as Double?
        {
            return (try Self.work(from: existing, cluster: cluster), false)
        }
        // The work as a bundle will carry it (as `work(from:forBundle:)` builds it from the row), so its hash is
        // written with it. Labels and annotations, maps of strings, read back as given; the spec is decoded from
        // the very text stored, since a number may not.
        var metadata = ObjectMeta(name: work.name, namespace: cluster, labels: work.metadata.labels)
        metadata.annotations = work.metadata.annotations
        if let existing {
            metadata.uid = existing["uid"]
            metadata.generation = (existing["generation"] as Int64) + 1
            metadata.creationTimestamp = Date(timeIntervalSince1970: existing["created_at"])
        } else {
            metadata.uid = UUID().uuidString.lowercased()
            metadata.generation = 1
            metadata.creationTimestamp = Date(timeIntervalSince1970: now.timeIntervalSince1970)
        }
        var stored = ManifestWork(metadata: metadata, spec: try Self.decode(ManifestWork.Spec.self, spec), status: nil)
        let hash = try BundleStatement.workHash(stored)
        let revision = try Self.bumpRevision(db, cluster)
        if existing != nil {
            try db.cachedStatement(
                sql: """
                    UPDATE works SET spec = ?, labels = ?, annotations = ?, generation = ?, revision = ?, bundle_hash = ?,
                        deleting_at = NULL WHERE cluster = ? AND name = ?
                    """
            ).execute(arguments: [spec, labels, annotations, metadata.generation, revision, hash, cluster, work.name])
        } else {
            try db.cachedStatement(
                sql: """
                    INSERT INTO works (cluster, name, uid, labels, annotations, generation, spec, revision, created_at, bundle_hash)
                    VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, ?)
                    """
            ).execute(arguments: [cluster, work.name, metadata.uid, labels, annotations, spec, revision, now.timeIntervalSince1970, hash])
        }
        try db.cachedStatement(sql: "DELETE FROM tombstones WHERE cluster = ? AND name = ?").execute(arguments: [cluster, work.name])
        stored.status = try (existing?["status"] as String?).map { try Self.decode(ManifestWork.Status.self, $0) }
        return (stored, true)
    }

    public func work(cluster: String, name: String) async throws -> ManifestWork? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM works WHERE cluster = ? AND name = ?", arguments: [cluster, name])
                .map { try Self.work(from: $0, cluster: cluster) }
        }
    }

    public func works(cluster: String?) async throws -> [ManifestWork] {
        try await pool.read { db in
            if let cluster {
                try Self.requireClusterExists(db, cluster)
                return try Row.fetchAll(db, sql: "SELECT * FROM works WHERE cluster = ? ORDER BY name", arguments: [cluster])
                    .map { try Self.work(from: $0, cluster: cluster) }
            }
            return try Row.fetchAll(db, sql: "SELECT * FROM works ORDER BY cluster, name")
                .map { try Self.work(from: $0, cluster: $0["cluster"]) }
        }
    }

    public func deleteWork(cluster: String, name: String, now: Date) async throws -> ManifestWork {
        let work = try await pool.write { db in
            let work = try Self.requireWork(db, cluster, name)
            guard work.metadata.deletionTimestamp == nil else { return work }
            let revision = try Self.bumpRevision(db, cluster)
            try db.execute(
                sql: "UPDATE works SET deleting_at = ?, revision = ? WHERE cluster = ? AND name = ?",
                arguments: [now.timeIntervalSince1970, revision, cluster, name])
            try db.execute(
                sql: "INSERT OR REPLACE INTO tombstones (cluster, name, revision, created_at) VALUES (?, ?, ?, ?)",
                arguments: [cluster, name, revision, now.timeIntervalSince1970])
            // What reading it back would give (`StoreTests`), without decoding its spec a second time.
            var deleting = work
            deleting.metadata.deletionTimestamp = Date(timeIntervalSince1970: now.timeIntervalSince1970)
            return deleting
        }
        changes.publish(cluster)
        return work
    }

    public func recordStatus(cluster: String, report: StatusReport, now: Date) async throws {
        try await statusReports.submit(StatusWrite(cluster: cluster, report: report, now: now))
    }

    struct StatusWrite: Sendable {
        let cluster: String
        let report: StatusReport
        let now: Date
    }

    /// One status report, within a transaction shared with the others waiting (`GroupCommit`).
    static func record(_ db: Database, _ write: StatusWrite) throws {
        let (cluster, report, now) = (write.cluster, write.report, write.now)
        var last = try Int64.fetchOne(try db.cachedStatement(sql: "SELECT last_transition FROM clusters WHERE name = ?"), arguments: [cluster]) ?? 0
        for transition in report.transitions ?? [] where transition.sequence > last {
            try Self.insert(
                db,
                Event(
                    time: transition.time, object: "ManifestWork/\(cluster)/\(transition.work)", reason: transition.reason,
                    // Generation 0: a deletion the site confirmed of a work it never had (`AgentCache.commit`).
                    message: transition.generation > 0
                        ? "\(transition.type)=\(transition.status) at generation \(transition.generation), on the site"
                        : "\(transition.type)=\(transition.status): the site never had it"))
            last = transition.sequence
        }
        if let dropped = report.droppedTransitions, dropped > 0 {
            try Self.insert(
                db,
                Event(
                    time: now, object: "ManagedCluster/\(cluster)", reason: "TransitionsDropped",
                    message: "the site's journal was full: \(dropped) status transitions were dropped before they could be sent"))
        }
        try db.cachedStatement(sql: "UPDATE clusters SET last_transition = ? WHERE name = ?").execute(arguments: [last, cluster])
        for update in report.works {
            if update.deleted {
                // Only a work the hub asked to delete goes away; a stale report never removes a live work.
                try db.cachedStatement(sql: "DELETE FROM works WHERE cluster = ? AND name = ? AND deleting_at IS NOT NULL").execute(arguments: [cluster, update.name])
            } else if let status = update.status {
                try db.cachedStatement(sql: "UPDATE works SET status = ? WHERE cluster = ? AND name = ? AND generation >= ?").execute(arguments: [try Self.json(status), cluster, update.name, update.observedGeneration])
            }
        }
    }

    public func revision(cluster: String) async throws -> Int64 {
        let (remembered, readAt) = changes.rememberedRevision(cluster)
        if let remembered { return remembered }
        let revision = try readHere { db in
            guard let revision = try Int64.fetchOne(try db.cachedStatement(sql: "SELECT revision FROM clusters WHERE name = ?"), arguments: [cluster]) else {
                throw CairnError(.notFound, "cluster \(cluster) not found", field: "cluster")
            }
            return revision
        }
        changes.remember(cluster, revision: revision, readAt: readAt)
        return revision
    }

    public func bundle(cluster: String, since: Int64?) async throws -> StoredBundle {
        // A delta (after a change, usually a work or two) is read here; a full bundle, every work of the cluster, on
        // a reader's queue.
        if let since, since > 0 { return try readHere { db in try Self.bundle(db, cluster: cluster, since: since) } }
        return try await pool.read { db in try Self.bundle(db, cluster: cluster, since: since) }
    }

    static func bundle(_ db: Database, cluster: String, since: Int64?) throws -> StoredBundle {
        let hashes = try Row.fetchAll(
            try db.cachedStatement(sql: "SELECT name, bundle_hash FROM works WHERE cluster = ? AND deleting_at IS NULL"), arguments: [cluster]
        ).map { (name: $0["name"] as String, hash: $0["bundle_hash"] as String) }
        let stateDigest = BundleStatement.stateDigest(hashes)
        guard let row = try Row.fetchOne(try db.cachedStatement(sql: "SELECT revision, tombstone_horizon, deletions_released_through FROM clusters WHERE name = ?"), arguments: [cluster]) else {
            throw CairnError(.notFound, "cluster \(cluster) not found", field: "cluster")
        }
        let revision: Int64 = row["revision"]
        let horizon: Int64 = row["tombstone_horizon"]
        let releasedValue: Int64 = row["deletions_released_through"]
        let released = releasedValue > 0 ? releasedValue : nil
        // A delta is only safe while every deletion since `since` still has its tombstone, and only from
        // a revision this hub has actually issued.
        if let since, since > 0, since >= horizon, since <= revision {
            let works = try Row.fetchAll(
                try db.cachedStatement(sql: "SELECT * FROM works WHERE cluster = ? AND revision > ? AND deleting_at IS NULL ORDER BY name"),
                arguments: [cluster, since]
            ).map { try Self.work(from: $0, cluster: cluster, forBundle: true) }
            let tombstones = try Row.fetchAll(
                try db.cachedStatement(sql: "SELECT name, revision FROM tombstones WHERE cluster = ? AND revision > ? ORDER BY name"),
                arguments: [cluster, since]
            ).map { Tombstone(name: $0["name"], revision: $0["revision"]) }
            return StoredBundle(bundle: WorkBundle(cluster: cluster, revision: revision, since: since, works: works, tombstones: tombstones, deletionsReleasedThrough: released), stateDigest: stateDigest)
        }
        // A full bundle removes whatever it leaves out, but a site that never had a work being deleted cannot tell
        // it apart from one never written: name those, so that it reports them gone and they leave the hub.
        var works = [ManifestWork]()
        var deleting = [Tombstone]()
        for row in try Row.fetchAll(try db.cachedStatement(sql: "SELECT * FROM works WHERE cluster = ? ORDER BY name"), arguments: [cluster]) {
            if row["deleting_at"] as Double? == nil {
                works.append(try Self.work(from: row, cluster: cluster, forBundle: true))
            } else {
                deleting.append(Tombstone(name: row["name"], revision: row["revision"]))
            }
        }
        return StoredBundle(
            bundle: WorkBundle(cluster: cluster, revision: revision, since: nil, works: works, tombstones: deleting, deletionsReleasedThrough: released),
            stateDigest: stateDigest)
    }

    public func releaseDeletions(cluster: String) async throws -> Int64 {
        let released = try await pool.write { db in
            guard let revision = try Int64.fetchOne(db, sql: "SELECT revision FROM clusters WHERE name = ?", arguments: [cluster]) else {
                throw CairnError(.notFound, "cluster \(cluster) not found", field: "name")
            }
            try db.execute(sql: "UPDATE clusters SET deletions_released_through = ? WHERE name = ?", arguments: [revision, cluster])
            _ = try Self.bumpRevision(db, cluster)
            return revision
        }
        changes.publish(cluster)
        return released
    }

    public func compactTombstones(before: Date) async throws -> Int {
        try await pool.write { db in
            let rows = try Row.fetchAll(
                db, sql: "SELECT cluster, MAX(revision) AS horizon FROM tombstones WHERE created_at < ? GROUP BY cluster",
                arguments: [before.timeIntervalSince1970])
            for row in rows {
                try db.execute(
                    sql: "UPDATE clusters SET tombstone_horizon = MAX(tombstone_horizon, ?) WHERE name = ?",
                    arguments: [row["horizon"] as Int64, row["cluster"] as String])
            }
            try db.execute(sql: "DELETE FROM tombstones WHERE created_at < ?", arguments: [before.timeIntervalSince1970])
            return db.changesCount
        }
    }

    static func bumpRevision(_ db: Database, _ cluster: String) throws -> Int64 {
        guard let revision = try Int64.fetchOne(
            try db.cachedStatement(sql: "UPDATE clusters SET revision = revision + 1 WHERE name = ? RETURNING revision"), arguments: [cluster])
        else { throw CairnError(.notFound, "cluster \(cluster) not found", field: "cluster") }
        return revision
    }

    static func requireWork(_ db: Database, _ cluster: String, _ name: String) throws -> ManifestWork {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM works WHERE cluster = ? AND name = ?", arguments: [cluster, name]) else {
            throw CairnError(.notFound, "work \(name) not found in cluster \(cluster)", field: "name")
        }
        return try work(from: row, cluster: cluster)
    }

    /// The work in `row`; with `spec: false`, its spec is left empty (and need not be selected).
    static func work(from row: Row, cluster: String, forBundle: Bool = false, spec withSpec: Bool = true) throws -> ManifestWork {
        var metadata = ObjectMeta(name: row["name"], namespace: cluster)
        metadata.labels = try (row["labels"] as String?).map { try decode([String: String].self, $0) }
        metadata.annotations = try (row["annotations"] as String?).map { try decode([String: String].self, $0) }
        metadata.generation = row["generation"]
        metadata.uid = row["uid"]
        metadata.creationTimestamp = Date(timeIntervalSince1970: row["created_at"])
        metadata.deletionTimestamp = (row["deleting_at"] as Double?).map(Date.init(timeIntervalSince1970:))
        let spec = withSpec ? try decode(ManifestWork.Spec.self, row["spec"]) : ManifestWork.Spec(manifests: [])
        let status = forBundle ? nil : try (row["status"] as String?).map { try decode(ManifestWork.Status.self, $0) }
        return ManifestWork(metadata: metadata, spec: spec, status: status)
    }
}
