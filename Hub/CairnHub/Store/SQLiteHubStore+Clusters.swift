import CairnCommon
import Foundation
import GRDB

extension SQLiteHubStore {
    public func enrol(_ request: EnrolRequest, keyHash: String, tokenID: String, tokenSecretHash: String, source: String, now: Date) async throws -> EnrolmentStatus {
        try await pool.write { db in
            guard let token = try Row.fetchOne(db, sql: "SELECT * FROM enrolment_tokens WHERE id = ?", arguments: [tokenID]),
                Secrets.constantTimeEqual(token["secret_hash"], tokenSecretHash)
            else { throw CairnError(.tokenRejected, "enrolment token is not valid", field: "token") }
            let parsed = try Self.token(from: token)
            guard !parsed.revoked else { throw CairnError(.tokenRejected, "enrolment token \(tokenID) was revoked", field: "token") }
            guard parsed.expiresAt > now else {
                throw CairnError(.tokenRejected, "enrolment token \(tokenID) expired at \(RFC3339.string(from: parsed.expiresAt))", field: "token")
            }
            if let existing = try Row.fetchOne(db, sql: "SELECT * FROM clusters WHERE name = ?", arguments: [request.clusterName]) {
                // The same agent asking again (it restarted before it saw the answer) gets the same answer.
                if Secrets.constantTimeEqual(existing["credential_hash"], request.credentialHash),
                    Secrets.constantTimeEqual(existing["key_hash"], keyHash)
                {
                    return EnrolmentStatus(clusterName: request.clusterName, state: EnrolmentState(rawValue: existing["enrolment"]) ?? .pending)
                }
                // Someone else wants this name: hold the request, flag the cluster, change nothing else.
                let held = EnrolmentStatus(
                    clusterName: request.clusterName, state: .pending,
                    message: "held: cluster \(request.clusterName) is enrolled with another key; an administrator has been alerted")
                if try Bool.fetchOne(
                    db, sql: "SELECT 1 FROM enrolment_conflicts WHERE cluster = ? AND credential_hash = ?",
                    arguments: [request.clusterName, request.credentialHash]) == true
                {
                    return held
                }
                if let maxUses = parsed.maxUses, parsed.uses >= maxUses {
                    throw CairnError(.tokenRejected, "enrolment token \(tokenID) has been used \(parsed.uses) of \(maxUses) times", field: "token")
                }
                try db.execute(sql: "UPDATE enrolment_tokens SET uses = uses + 1 WHERE id = ?", arguments: [tokenID])
                try db.execute(
                    sql: "INSERT INTO enrolment_conflicts (cluster, credential_hash, key_hash, source, time) VALUES (?, ?, ?, ?, ?)",
                    arguments: [request.clusterName, request.credentialHash, keyHash, source, now.timeIntervalSince1970])
                var cluster = try Self.cluster(from: existing)
                cluster.status.conditions.set(Condition(
                    type: "EnrolmentConflict", status: Condition.true, reason: "NameClaimedByAnotherKey",
                    message: "an agent at \(source) with a valid token (\(tokenID)) asked for this name with another key at \(RFC3339.string(from: now)); it is held pending",
                    lastTransitionTime: now))
                try db.execute(
                    sql: "UPDATE clusters SET conditions = ? WHERE name = ?", arguments: [try Self.json(cluster.status.conditions), request.clusterName])
                return held
            }
            if let maxUses = parsed.maxUses, parsed.uses >= maxUses {
                throw CairnError(.tokenRejected, "enrolment token \(tokenID) has been used \(parsed.uses) of \(maxUses) times", field: "token")
            }
            try db.execute(sql: "UPDATE enrolment_tokens SET uses = uses + 1 WHERE id = ?", arguments: [tokenID])
            var labels = request.labels ?? [:]
            labels.merge(parsed.labels) { _, stamped in stamped }
            let state: EnrolmentState = parsed.autoApprove ? .accepted : .pending
            var conditions: [Condition] = []
            if state == .accepted {
                conditions.set(Condition(type: ConditionType.joined, status: Condition.false, reason: "AwaitingAgent", message: "approved; waiting for the agent's first heartbeat", lastTransitionTime: now))
            }
            try db.execute(
                sql: """
                    INSERT INTO clusters (name, uid, labels, enrolment, credential_hash, token_id, conditions, claims,
                        allocatable, taints, created_at, key_hash, csr)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, '{}', '[]', ?, ?, ?)
                    """,
                arguments: [
                    request.clusterName, UUID().uuidString.lowercased(), try Self.json(labels), state.rawValue,
                    request.credentialHash, tokenID, try Self.json(conditions), try Self.json(request.claims ?? []),
                    now.timeIntervalSince1970, keyHash, request.csr,
                ])
            return EnrolmentStatus(clusterName: request.clusterName, state: state)
        }
    }

    public func cluster(named name: String) async throws -> ManagedCluster? {
        // What is read shows the latest lease time.
        try await flushHeartbeats()
        return try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM clusters WHERE name = ?", arguments: [name]).map(Self.cluster(from:))
        }
    }

    public func clusters() async throws -> [ManagedCluster] {
        try await flushHeartbeats()
        return try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM clusters ORDER BY name").map(Self.cluster(from:))
        }
    }

    public func identity(cluster name: String) async throws -> ClusterIdentity? {
        try await pool.read { db in
            guard
                let row = try Row.fetchOne(
                    try db.cachedStatement(sql: "SELECT credential_hash, enrolment, key_hash, csr, certificate FROM clusters WHERE name = ?"),
                    arguments: [name]),
                let state = EnrolmentState(rawValue: row["enrolment"])
            else { return nil }
            return ClusterIdentity(state: state, credentialHash: row["credential_hash"], keyHash: row["key_hash"], csr: row["csr"], certificate: row["certificate"])
        }
    }

    public func access(cluster name: String) async throws -> ClusterAccess? {
        if let known = memo.access(name) { return known }
        let generation = memo.generation
        let read = try readHere { db -> (ClusterAccess, Int64)? in
            guard
                let row = try Row.fetchOne(
                    try db.cachedStatement(sql: "SELECT rowid, enrolment, key_hash FROM clusters WHERE name = ?"), arguments: [name]),
                let state = EnrolmentState(rawValue: row["enrolment"])
            else { return nil }
            return (ClusterAccess(state: state, keyHash: row["key_hash"]), row["rowid"])
        }
        guard let (access, row) = read else { return nil }
        memo.remember(access, of: name, row: row, readAt: generation)
        return access
    }

    public func storeCertificate(cluster name: String, pem: String) async throws {
        try await pool.write { db in
            try db.execute(sql: "UPDATE clusters SET certificate = ? WHERE name = ?", arguments: [pem, name])
            guard db.changesCount > 0 else { throw CairnError(.notFound, "cluster \(name) not found", field: "cluster") }
        }
    }

    public func isHeld(cluster name: String, credentialHash: String) async throws -> Bool {
        try await pool.read { db in
            try Bool.fetchOne(
                db, sql: "SELECT 1 FROM enrolment_conflicts WHERE cluster = ? AND credential_hash = ?", arguments: [name, credentialHash]) == true
        }
    }

    public func renewCertificate(cluster name: String, keyHash: String, csr: String, pem: String) async throws {
        try await pool.write { db in
            try db.execute(
                sql: "UPDATE clusters SET key_hash = ?, csr = ?, certificate = ? WHERE name = ? AND enrolment = 'Accepted'",
                arguments: [keyHash, csr, pem, name])
            guard db.changesCount > 0 else { throw CairnError(.forbidden, "cluster \(name) is not accepted", field: "cluster") }
        }
    }

    public func allowReissue(cluster name: String) async throws {
        try await pool.write { db in
            try db.execute(sql: "UPDATE clusters SET certificate = NULL WHERE name = ?", arguments: [name])
            guard db.changesCount > 0 else { throw CairnError(.notFound, "cluster \(name) not found", field: "name") }
        }
    }

    public func setEnrolment(cluster name: String, state: EnrolmentState, now: Date) async throws -> ManagedCluster {
        let cluster = try await pool.write { db in
            var cluster = try Self.requireCluster(db, name)
            guard cluster.status.enrolment != state else { return cluster }
            cluster.status.enrolment = state
            switch state {
            case .accepted:
                cluster.status.conditions.set(Condition(type: ConditionType.joined, status: Condition.false, reason: "AwaitingAgent", message: "approved; waiting for the agent's first heartbeat", lastTransitionTime: now))
            case .denied:
                cluster.status.conditions.set(Condition(type: ConditionType.joined, status: Condition.false, reason: "Denied", message: "an administrator denied this cluster", lastTransitionTime: now))
                cluster.status.conditions.set(Condition(type: ConditionType.available, status: Condition.unknown, reason: "Denied", message: "the cluster is denied", lastTransitionTime: now))
            case .pending:
                break
            }
            try db.execute(
                sql: "UPDATE clusters SET enrolment = ?, conditions = ? WHERE name = ?",
                arguments: [state.rawValue, try Self.json(cluster.status.conditions), name])
            return try Self.requireCluster(db, name)
        }
        changes.publish(name)
        return cluster
    }

    public func updateLabels(cluster name: String, patch: LabelPatch) async throws -> ManagedCluster {
        try await pool.write { db in
            let cluster = try Self.requireCluster(db, name)
            var labels = cluster.metadata.labels ?? [:]
            for key in patch.remove ?? [] { labels[key] = nil }
            labels.merge(patch.set ?? [:]) { _, new in new }
            guard labels.count <= Names.maxLabels else {
                throw CairnError(.invalid, "cluster \(name) would have \(labels.count) labels; at most \(Names.maxLabels) are allowed", field: "set")
            }
            try db.execute(sql: "UPDATE clusters SET labels = ? WHERE name = ?", arguments: [try Self.json(labels), name])
            return try Self.requireCluster(db, name)
        }
    }

    public func removeCluster(named name: String) async throws {
        try await pool.write { db in
            try db.execute(sql: "DELETE FROM clusters WHERE name = ?", arguments: [name])
            guard db.changesCount > 0 else { throw CairnError(.notFound, "cluster \(name) not found", field: "name") }
        }
        changes.publish(name)
    }

    public func renewLease(byPollOf name: String, now: Date) async throws -> Bool {
        // Remembered as a heartbeat is: a cluster whose last heartbeat is remembered, or found Available since
        // nothing it holds changed, is read no more than an unchanged heartbeat's is.
        if !memo.isLive(name) {
            let generation = memo.generation
            let (available, row) = try readHere { db in
                let (cluster, row) = try Self.requireClusterRow(db, name)
                return (cluster.status.conditions[type: ConditionType.available]?.status == Condition.true, row)
            }
            guard available else { return false }
            memo.rememberLive(name, row: row, readAt: generation)
        }
        if heartbeats.note(name, at: now) { try await flushHeartbeats() }
        return true
    }

    @discardableResult
    public func recordHeartbeat(cluster name: String, heartbeat: Heartbeat, now: Date) async throws -> Bool {
        // Most heartbeats change nothing but the lease's time: that is noted in memory and written with the
        // others once a second (a crash forgets at most a second of a lease the timeout covers many times over),
        // so 10,000 sites beating every 10 s cost one transaction a second, not a thousand. One the same as the
        // cluster's last that changed nothing, with nothing changed since, is not even read (`ClusterMemo`).
        if memo.isUnchanged(heartbeat, of: name) {
            if heartbeats.note(name, at: now) { try await flushHeartbeats() }
            return false
        }
        let generation = memo.generation
        let (unchanged, row) = try readHere { db in
            let (cluster, row) = try Self.requireClusterRow(db, name)
            let unchanged = Self.beat(cluster, heartbeat, now: now) == cluster.status.conditions
                && cluster.status.clusterClaims == heartbeat.claims && cluster.status.allocatable == heartbeat.allocatable
            return (unchanged, row)
        }
        if unchanged {
            memo.rememberUnchanged(heartbeat, of: name, row: row, readAt: generation)
            if heartbeats.note(name, at: now) { try await flushHeartbeats() }
            return false
        }
        let (relevant, written, before) = try await pool.write { db in
            var (cluster, row) = try Self.requireClusterRow(db, name)
            let relevant = cluster.status.clusterClaims != heartbeat.claims || cluster.status.allocatable != heartbeat.allocatable
                || cluster.status.conditions[type: ConditionType.available]?.status != Condition.true
            cluster.status.conditions = Self.beat(cluster, heartbeat, now: now)
            try db.execute(
                sql: "UPDATE clusters SET conditions = ?, claims = ?, allocatable = ?, last_heartbeat = MAX(COALESCE(last_heartbeat, 0), ?) WHERE name = ?",
                arguments: [
                    try Self.json(cluster.status.conditions), try Self.json(heartbeat.claims), try Self.json(heartbeat.allocatable),
                    now.timeIntervalSince1970, name,
                ])
            return (relevant, row, memo.generation)
        }
        // The same heartbeat again changes nothing now: remembered at once, so the site's next beat reads nothing
        // either (a fleet enrolling, or a changed claim, would otherwise cost every site one more read). This commit
        // moved the generation by one; any other commit since, and it is not kept.
        memo.rememberUnchanged(heartbeat, of: name, row: written, readAt: before + 1)
        return relevant
    }

    /// The cluster's conditions once this heartbeat is taken.
    static func beat(_ cluster: ManagedCluster, _ heartbeat: Heartbeat, now: Date) -> [Condition] {
        var conditions = cluster.status.conditions
        conditions.set(Condition(type: ConditionType.joined, status: Condition.true, reason: "AgentConnected", message: "the agent holds an accepted credential", lastTransitionTime: now))
        conditions.set(Condition(type: ConditionType.available, status: Condition.true, reason: "HeartbeatReceived", message: "the agent's lease is current", lastTransitionTime: now))
        for condition in heartbeat.conditions ?? [] where ConditionType.reportedBySite.contains(condition.type) {
            conditions.set(condition)
        }
        return conditions
    }

    /// Writes the lease times noted in memory, in one transaction.
    func flushHeartbeats() async throws {
        let due = heartbeats.take()
        guard !due.isEmpty else { return }
        try await pool.write { db in
            for (name, time) in due {
                try db.cachedStatement(sql: "UPDATE clusters SET last_heartbeat = ? WHERE name = ? AND (last_heartbeat IS NULL OR last_heartbeat < ?)")
                    .execute(arguments: [time, name, time])
            }
        }
    }

    public func acceptedClusterCount() async throws -> Int {
        try await pool.read { db in try Int.fetchOne(db, sql: Self.acceptedCountSQL) ?? 0 }
    }

    /// The lease check's two reads, each every few seconds; both go by the `clusters_by_lease` index, never through
    /// the cluster rows (`StoreTests` checks their query plans).
    static let acceptedCountSQL = "SELECT COUNT(*) FROM clusters WHERE enrolment = 'Accepted'"
    static let silentClustersSQL = "SELECT * FROM clusters WHERE enrolment = 'Accepted' AND last_heartbeat IS NOT NULL AND last_heartbeat < ?"

    public func markSilentClusters(before: Date, now: Date) async throws -> [String] {
        try await flushHeartbeats()
        return try await pool.write { db in
            let rows = try Row.fetchAll(db, sql: Self.silentClustersSQL, arguments: [before.timeIntervalSince1970])
            var marked = [String]()
            for row in rows {
                var cluster = try Self.cluster(from: row)
                guard cluster.status.conditions[type: ConditionType.available]?.status != Condition.unknown else { continue }
                cluster.status.conditions.set(Condition(type: ConditionType.available, status: Condition.unknown, reason: "LeaseExpired", message: "no heartbeat since \(RFC3339.string(from: cluster.status.lastHeartbeatTime ?? now))", lastTransitionTime: now))
                try db.execute(
                    sql: "UPDATE clusters SET conditions = ? WHERE name = ?",
                    arguments: [try Self.json(cluster.status.conditions), cluster.name])
                marked.append(cluster.name)
            }
            return marked
        }
    }

    static func requireCluster(_ db: Database, _ name: String) throws -> ManagedCluster {
        try requireClusterRow(db, name).cluster
    }

    /// The cluster and its row's id (what `ClusterMemo` knows a cluster's changes by).
    static func requireClusterRow(_ db: Database, _ name: String) throws -> (cluster: ManagedCluster, row: Int64) {
        // A cached statement: read on every heartbeat, and GRDB's compile (with its authorizer) showed in profiles.
        guard let row = try Row.fetchOne(try db.cachedStatement(sql: "SELECT rowid, * FROM clusters WHERE name = ?"), arguments: [name]) else {
            throw CairnError(.notFound, "cluster \(name) not found", field: "cluster")
        }
        return (try cluster(from: row), row["rowid"])
    }

    /// `requireCluster` for a caller that only needs the cluster to exist: nothing decoded.
    static func requireClusterExists(_ db: Database, _ name: String) throws {
        guard try Bool.fetchOne(try db.cachedStatement(sql: "SELECT 1 FROM clusters WHERE name = ?"), arguments: [name]) != nil else {
            throw CairnError(.notFound, "cluster \(name) not found", field: "cluster")
        }
    }

    static func cluster(from row: Row) throws -> ManagedCluster {
        var metadata = ObjectMeta(name: row["name"], labels: try decode([String: String].self, row["labels"]))
        metadata.uid = row["uid"]
        metadata.creationTimestamp = Date(timeIntervalSince1970: row["created_at"])
        var cluster = ManagedCluster(metadata: metadata)
        let enrolment = EnrolmentState(rawValue: row["enrolment"]) ?? .pending
        cluster.spec.hubAcceptsClient = enrolment == .accepted
        cluster.status.conditions = try decode([Condition].self, row["conditions"])
        // The hub's own taints (unreachable, unavailable) are shown with the administrator's.
        let taints = PlacementScheduler.taints(of: ManagedCluster(metadata: cluster.metadata, spec: .init(), status: cluster.status))
            + (try decode([Taint].self, row["taints"]))
        cluster.spec.taints = taints.isEmpty ? nil : taints
        cluster.status.enrolment = enrolment
        cluster.status.clusterClaims = try decode([ClusterClaim].self, row["claims"])
        cluster.status.allocatable = try decode([String: String].self, row["allocatable"])
        cluster.status.lastHeartbeatTime = (row["last_heartbeat"] as Double?).map(Date.init(timeIntervalSince1970:))
        cluster.status.revision = row["revision"]
        return cluster
    }
}
