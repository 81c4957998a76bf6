import CairnCommon
import Foundation
import Hummingbird
import ServiceLifecycle

/// The endpoints agents call: enrol, ask about enrolment, long-poll for bundles, report status, heartbeat.
/// Every call but enrolment is authenticated as one cluster and can touch only that cluster.
struct AgentController: Sendable {
    let store: any HubStore
    let auth: Authenticator
    let configuration: HubConfiguration
    let counters: BundleCounters
    let leases: LeaseCounters
    let shedder: LoadShedder
    let pki: HubPKI
    let enrolmentLimiter: RateLimiter
    let rescheduled: Wakeup
    let rollout: Wakeup
    let pacing: HeartbeatPacing
    let codec = BundleCodec()

    func addRoutes(to group: RouterGroup<HubRequestContext>) {
        group.post("agent/enrol") { request, context in
            let source = context.channel.remoteAddress?.ipAddress ?? "unknown"
            if let wait = await enrolmentLimiter.take(source) {
                throw CairnError(.tooManyRequests, "too many enrolment requests from \(source); retry in \(Int(wait.rounded(.up))) s")
            }
            let ask = try await request.decode(EnrolRequest.self, context: context, what: "enrolment request")
            try Names.validateLabel(ask.clusterName, field: "clusterName")
            try Names.validateLabels(ask.labels, field: "labels")
            guard ask.credentialHash.count == 64, ask.credentialHash.allSatisfy(\.isHexDigit) else {
                throw CairnError(.invalid, "credentialHash must be 64 hex digits (SHA-256)", field: "credentialHash")
            }
            try Self.validate(claims: ask.claims ?? [])
            guard ask.csr.utf8.count <= 16 * 1024 else { throw CairnError(.tooLarge, "csr is larger than 16 KiB", field: "csr") }
            let csr = try HubPKI.parseCSR(ask.csr, cluster: ask.clusterName)
            let parts = ask.token.split(separator: ".", maxSplits: 1)
            guard parts.count == 2 else { throw CairnError(.tokenRejected, "enrolment token is malformed", field: "token") }
            let status = try await store.enrol(
                ask, keyHash: TrustMaterial.keyHash(csr.publicKey), tokenID: String(parts[0]),
                tokenSecretHash: Secrets.hash(String(parts[1])), source: source, now: Date())
            if status.message != nil {
                context.logger.warning("enrolment held: the name is enrolled with another key", metadata: ["cluster.name": .string(ask.clusterName), "source": .string(source)])
            }
            context.logger.info(
                "cluster enrolled", metadata: ["cluster.name": .string(ask.clusterName), "cluster.enrolment": .string(status.state.rawValue)])
            return try Response.json(status, status: .created)
        }
        group.get("agent/enrolment") { request, _ in
            if let (cluster, held) = try await auth.heldEnrolment(request) {
                return try Response.json(EnrolmentStatus(clusterName: cluster, state: .pending, message: held))
            }
            let (cluster, identity) = try await auth.requireEnrolmentCredential(request)
            guard identity.state == .accepted else { return try Response.json(EnrolmentStatus(clusterName: cluster, state: identity.state)) }
            // Issued once approved, for the key the site enrolled with; asked again, the same certificate is returned.
            var certificate = identity.certificate
            if certificate == nil {
                let issued = try pki.issueClientCertificate(csrPEM: identity.csr, cluster: cluster, lifetime: configuration.certificateLifetime)
                certificate = try TrustMaterial.pem([issued])
                try await store.storeCertificate(cluster: cluster, pem: certificate!)
            }
            var answer = EnrolmentStatus(clusterName: cluster, state: .accepted, certificate: certificate, signingKey: pki.signingPublicKey)
            answer.caBundle = pki.caPEM
            return try Response.json(answer)
        }
        group.get("ca") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/x-pem-file"], body: .init(byteBuffer: ByteBuffer(string: pki.caPEM)))
        }
        group.get("agent/clusters/:name/bundle") { request, context in
            let cluster = try await auth.requireCluster(context, acting: try request.pathParameter("name", context: context))
            return try await bundle(cluster: cluster, request: request, context: context)
        }
        group.post("agent/clusters/:name/status") { request, context in
            let cluster = try await auth.requireCluster(context, acting: try request.pathParameter("name", context: context))
            let report = try await request.decode(StatusReport.self, context: context, what: "status report")
            guard report.works.count <= 1_000 else {
                throw CairnError(.tooLarge, "a status report holds at most 1000 works", field: "works")
            }
            for (index, update) in report.works.enumerated() {
                try Names.validateLabel(update.name, field: "works[\(index)].name")
            }
            let transitions = report.transitions ?? []
            guard transitions.count <= 1_000 else {
                throw CairnError(.tooLarge, "a status report holds at most 1000 transitions", field: "transitions")
            }
            for (index, transition) in transitions.enumerated() {
                let field = "transitions[\(index)]"
                try Names.validateLabel(transition.work, field: "\(field).work")
                guard transition.sequence > 0, index == 0 || transition.sequence > transitions[index - 1].sequence else {
                    throw CairnError(.invalid, "\(field).sequence must be positive and increasing", field: "\(field).sequence")
                }
                guard transition.type.utf8.count <= 64, transition.reason.utf8.count <= 128,
                    Condition.statuses.contains(transition.status)
                else {
                    throw CairnError(.invalid, "\(field) has a bad status, or a type or reason too long", field: field)
                }
            }
            guard (report.droppedTransitions ?? 0) >= 0 else {
                throw CairnError(.invalid, "droppedTransitions must not be negative", field: "droppedTransitions")
            }
            try await store.recordStatus(cluster: cluster, report: report, now: Date())
            await rollout.fire()
            return Response(status: .noContent)
        }
        group.post("agent/clusters/:name/renew") { request, context in
            let cluster = try await auth.requireCluster(context, acting: try request.pathParameter("name", context: context))
            let ask = try await request.decode(RenewRequest.self, context: context, what: "renewal request")
            guard ask.csr.utf8.count <= 16 * 1024 else { throw CairnError(.tooLarge, "csr is larger than 16 KiB", field: "csr") }
            let csr = try HubPKI.parseCSR(ask.csr, cluster: cluster)
            let issued = try TrustMaterial.pem([
                try pki.issueClientCertificate(csrPEM: ask.csr, cluster: cluster, lifetime: configuration.certificateLifetime)
            ])
            try await store.renewCertificate(cluster: cluster, keyHash: TrustMaterial.keyHash(csr.publicKey), csr: ask.csr, pem: issued)
            context.logger.info("certificate renewed", metadata: ["cluster.name": .string(cluster)])
            var answer = EnrolmentStatus(clusterName: cluster, state: .accepted, certificate: issued, signingKey: pki.signingPublicKey)
            answer.caBundle = pki.caPEM
            return try Response.json(answer)
        }
        group.post("agent/clusters/:name/heartbeat") { request, context in
            let cluster = try await auth.requireCluster(context, acting: try request.pathParameter("name", context: context))
            let heartbeat = try await request.decode(Heartbeat.self, context: context, what: "heartbeat")
            try Self.validate(claims: heartbeat.claims)
            for (index, condition) in (heartbeat.conditions ?? []).enumerated() {
                guard ConditionType.reportedBySite.contains(condition.type) else {
                    throw CairnError(.invalid, "conditions[\(index)].type '\(condition.type)' is not one a site may report", field: "conditions[\(index)].type")
                }
                guard condition.message.utf8.count <= 1024, condition.reason.utf8.count <= 128,
                    Condition.statuses.contains(condition.status)
                else {
                    throw CairnError(.invalid, "conditions[\(index)] has a bad status, or a reason or message too long", field: "conditions[\(index)]")
                }
            }
            if try await store.recordHeartbeat(cluster: cluster, heartbeat: heartbeat, now: Date()) { await rescheduled.fire() }
            leases.recordHeartbeat()
            return try Response.json(HeartbeatResponse(intervalSeconds: pacing.currentInterval, pollsRenewLease: true))
        }
    }

    /// Answers at once when the cluster's revision differs from `since`; otherwise waits for a change
    /// or the end of `wait`, then answers "nothing new" (204).
    ///
    /// Every connected site holds one of these for up to `maxLongPollSeconds`, and with it every frame on its task at
    /// the deepest the request went: the task's allocator keeps its slabs until the task ends. So what comes before
    /// the wait and the answer after it are functions of their own (`pollQuery`, `hold`, `answer`), not inlined
    /// here (see BENCHMARKS.md, hub memory per site).
    func bundle(cluster: String, request: Request, context: HubRequestContext) async throws -> Response {
        let (since, wait) = try Self.pollQuery(request, limit: configuration.maxLongPollSeconds)
        // The poll renews the lease as a heartbeat would; when it cannot (the cluster is not Available), the answer
        // asks the agent for a heartbeat, whenever it comes.
        let renewed = try await store.renewLease(byPollOf: cluster, now: Date())
        if renewed { leases.recordPoll() }
        let waiter = store.changes.register(cluster)
        var revision = try await store.revision(cluster: cluster)
        if let since, revision == since, wait > 0 {
            try await hold(cluster, waiter: waiter, seconds: wait)
            // The cluster may have been denied or removed while we waited.
            _ = try await auth.requireCluster(context, acting: cluster)
            revision = try await store.revision(cluster: cluster)
        } else {
            store.changes.cancel(cluster, id: waiter)
        }
        return try await answer(cluster: cluster, since: since, revision: revision, renewed: renewed)
    }

    /// `since` and `wait` from a poll's query.
    @inline(never)
    static func pollQuery(_ request: Request, limit: Double) throws -> (since: Int64?, wait: Double) {
        let query = request.uri.queryParameters
        var since: Int64?
        if let text = query["since"] {
            guard let value = Int64(text), value >= 0 else {
                throw CairnError(.invalid, "since must be a non-negative revision", field: "since")
            }
            since = value
        }
        var wait = 0.0
        if let text = query["wait"] {
            guard let value = Double(text), value >= 0, value.isFinite else {
                throw CairnError(.invalid, "wait must be a number of seconds", field: "wait")
            }
            wait = min(value, limit)
        }
        return (since, wait)
    }

    /// Waits for a change to the cluster, at most `seconds`. A held poll ends when the hub shuts down, so the
    /// server drains at once.
    @inline(never)
    func hold(_ cluster: String, waiter: Int, seconds: Double) async throws {
        let changes = store.changes
        do {
            try await shedder.holdingLongPoll {
                await withGracefulShutdownHandler {
                    await changes.wait(cluster, id: waiter, timeout: .milliseconds(Int64(seconds * 1000)))
                } onGracefulShutdown: {
                    changes.cancel(cluster, id: waiter)
                }
            }
        } catch {
            changes.cancel(cluster, id: waiter)
            throw error
        }
    }

    /// "Nothing new" (204) when the cluster is still at `since`; else the bundle from `since`, signed.
    @inline(never)
    func answer(cluster: String, since: Int64?, revision: Int64, renewed: Bool) async throws -> Response {
        var headers: HTTPFields = renewed ? [:] : [.init(BundleHeaders.heartbeatWanted)!: "true"]
        if let since, revision == since {
            counters.record(full: nil)
            headers[.init(BundleHeaders.revision)!] = String(revision)
            return Response(status: .noContent, headers: headers)
        }
        let stored = try await store.bundle(cluster: cluster, since: since)
        let bundle = stored.bundle
        let encoded = try codec.encode(bundle)
        counters.record(full: bundle.isFull)
        let signature = try pki.sign(
            BundleStatement(cluster: cluster, revision: bundle.revision, bundleDigest: encoded.digest, stateDigest: stored.stateDigest))
        headers[.contentType] = BundleHeaders.contentType
        headers[.init(BundleHeaders.digest)!] = encoded.digest
        headers[.init(BundleHeaders.revision)!] = String(bundle.revision)
        headers[.init(BundleHeaders.stateDigest)!] = stored.stateDigest
        headers[.init(BundleHeaders.signature)!] = signature
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: encoded.bytes)))
    }

    static func validate(claims: [ClusterClaim]) throws {
        guard claims.count <= 100 else { throw CairnError(.tooLarge, "at most 100 claims are allowed", field: "claims") }
        for (index, claim) in claims.enumerated() {
            try Names.validateObjectName(claim.name, field: "claims[\(index)].name")
            guard claim.value.utf8.count <= 1024 else {
                throw CairnError(.tooLarge, "claims[\(index)].value is longer than 1024 bytes", field: "claims[\(index)].value")
            }
        }
    }
}
