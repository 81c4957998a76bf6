import AsyncHTTPClient
import CairnAgent
import CairnCommon
import Foundation
import Synchronization

/// One simulated site, real on the wire: its own key and client certificate, enrolment with a CSR, mTLS
/// long-polls, heartbeats and status reports over its own connection (HTTP/2), bundles verified with the hub's signature.
/// It "applies" a bundle to an in-memory simulated cluster — each work's generation, ready at once — and
/// reports Applied and Available for what it applied, with the same per-manifest conditions a real agent sends.
/// It shares the bench process (and one HTTP client) to stay cheap, and keeps no cache on disk.
final class SimulatedAgent: Sendable {
    let name: String
    let identity: AgentIdentity
    let client: HubClient
    let timeline: Timeline?
    /// When the agent last got an answer from the hub (a heartbeat or a poll).
    let lastAnswer = Mutex<Date?>(nil)
    /// Whether the hub has answered this site at all.
    var answered: Bool { lastAnswer.withLock { $0 } != nil }
    let revision = Mutex<Int64?>(nil)
    let shed = Atomic<Int>(0)
    /// The simulated cluster: each work's generation on the site.
    let site = Mutex<[String: Int64]>([:])
    /// Heartbeats are left out while polls renew the lease, as a real agent's are.
    let heartbeats = HeartbeatPacer()

    private init(name: String, identity: AgentIdentity, client: HubClient, timeline: Timeline?) {
        self.name = name
        self.identity = identity
        self.client = client
        self.timeline = timeline
    }

    /// Enrols with an auto-approving token and returns the agent, holding its certificate. Enrolment goes over
    /// `enrolling`, its own connections; the agent then uses `http`.
    static func enrol(
        name: String, http: HTTPClient, enrolling: HTTPClient, hubURL: String, caPEM: String, fingerprint: String, token: String,
        timeline: Timeline? = nil
    ) async throws -> SimulatedAgent {
        var identity = AgentIdentity(hubURL: hubURL, clusterName: name, labels: ["bench": "true"], caPEM: caPEM, caFingerprint: fingerprint)
        let key = AgentKey.ephemeral()
        let anonymous = HubClient(http: enrolling, baseURL: hubURL, tls: try identity.anonymousTLS(), timeout: .seconds(60))
        var status = try await anonymous.enrol(
            EnrolRequest(token: token, clusterName: name, labels: identity.labels, credentialHash: identity.credentialHash, csr: try key.csr(cluster: name), claims: nil))
        // Accepted at once; the certificate is handed out when the site asks how its enrolment stands.
        for _ in 0..<50 where status.state == .accepted && status.certificate == nil {
            status = try await anonymous.enrolment(identity)
            if status.certificate == nil { try await Task.sleep(for: .milliseconds(100)) }
        }
        guard status.state == .accepted, let certificate = status.certificate else {
            throw BenchError("\(name) was not accepted at once (\(status.state.rawValue)); the bench needs an auto-approving token")
        }
        identity.enrolment = .accepted
        identity.certificatePEM = certificate
        identity.signingKey = status.signingKey
        return SimulatedAgent(
            name: name, identity: identity, client: HubClient(http: http, baseURL: hubURL, tls: try identity.tls(key: key), timeout: .seconds(60)),
            timeline: timeline)
    }

    /// Heartbeats at the interval the hub asks for, and long-polls, applying each bundle and reporting its status
    /// before polling again — each on its own. After a failure: jittered backoff (or what Retry-After says), so
    /// the moment the hub is back is the moment the agent says so. A status report that failed is sent again
    /// before the next poll.
    ///
    /// The first poll waits for the first heartbeat's answer (or failure, or 60 s): sent together on a site's new
    /// client, the two would each open a connection before either knew the hub speaks HTTP/2, and the spare one —
    /// queued behind 10,000 others at the hub — would be set up and closed there long after, in the middle of a
    /// measured phase (~1,100 of them at 10,000 sites, ~10% of the hub's CPU while it measured writes).
    func run(pollWait: Double) async {
        let firstBeat = Wakeup()
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.heartbeats(firstBeat: firstBeat) }
            group.addTask {
                await firstBeat.wait(timeout: .seconds(60))
                await self.polls(pollWait: pollWait)
            }
        }
    }

    private func heartbeats(firstBeat: Wakeup) async {
        var attempt = 0
        var interval = 10.0
        var polling = false
        func startPolling() async {
            guard !polling else { return }
            polling = true
            await firstBeat.fire()
        }
        while !Task.isCancelled {
            do {
                let heartbeat = Heartbeat(claims: [ClusterClaim(name: "adapter", value: "bench")], allocatable: [:])
                if heartbeats.shouldSend(heartbeat, interval: interval) {
                    let answer = try await client.heartbeat(heartbeat, identity: identity)
                    lastAnswer.withLock { $0 = Date() }
                    interval = answer.intervalSeconds
                    heartbeats.sent(heartbeat, answer: answer)
                }
                await startPolling()
                attempt = 0
                await heartbeats.waitForNext(interval: interval)
            } catch {
                await startPolling()
                heartbeats.heartbeatFailed()
                attempt += 1
                try? await Task.sleep(for: .milliseconds(Int64(backoff(error, attempt: attempt) * 1000)))
            }
        }
    }

    private func polls(pollWait: Double) async {
        var attempt = 0
        var outbox = Outbox()
        while !Task.isCancelled {
            do {
                if !outbox.isEmpty {
                    try await client.report(StatusReport(works: outbox.updates), identity: identity)
                    let now = ContinuousClock.now
                    for event in outbox.acknowledging { timeline?.record(event, at: now) }
                    outbox = Outbox()
                }
                let since = revision.withLock { $0 }
                heartbeats.polling()
                let answer = try await client.bundle(since: since, wait: pollWait, identity: identity, maxBytes: 64 << 20)
                lastAnswer.withLock { $0 = Date() }
                attempt = 0
                await heartbeats.pollAnswered(heartbeatWanted: answer.heartbeatWanted)
                if case .bundle(let bytes, let digest, let stateDigest, let signature) = answer.bundle {
                    let (bundle, _) = try BundleVerifier(identity: identity).verify(bytes: bytes, digest: digest, stateDigest: stateDigest, signature: signature, since: since)
                    apply(bundle, to: &outbox)
                    revision.withLock { $0 = bundle.revision }
                }
            } catch {
                heartbeats.pollFailed()
                attempt += 1
                try? await Task.sleep(for: .milliseconds(Int64(backoff(error, attempt: attempt) * 1000)))
            }
        }
    }

    /// Seconds to wait after a failure: what Retry-After says when the hub shed the request, else jittered
    /// exponential backoff from 0.2 s up to 30 s.
    private func backoff(_ error: any Error, attempt: Int) -> Double {
        if let retryAfter = (error as? HubError)?.retryAfter {
            shed.add(1, ordering: .relaxed)
            return Double(retryAfter) * Double.random(in: 1...1.5)
        }
        let delay = min(30, 0.2 * pow(2, Double(min(attempt, 10))))
        return Double.random(in: delay / 2...delay)
    }

    /// Status updates waiting for the hub, latest per work, with the events their acknowledgement completes.
    struct Outbox {
        private var byWork: [String: (update: WorkStatusUpdate, event: Timeline.Key)] = [:]
        var isEmpty: Bool { byWork.isEmpty }
        var updates: [WorkStatusUpdate] { byWork.values.map(\.update).sorted { $0.name < $1.name } }
        var acknowledging: [Timeline.Key] { byWork.values.map(\.event) }
        mutating func put(_ update: WorkStatusUpdate, _ event: Timeline.Key) { byWork[update.name] = (update, event) }
    }

    /// Applies a verified bundle to the simulated cluster: a full bundle replaces what the site holds, a delta
    /// adds and changes works and removes its tombstones.
    func apply(_ bundle: WorkBundle, to outbox: inout Outbox) {
        let now = ContinuousClock.now
        let date = Date()
        var changed = [ManifestWork]()
        var removed = [(String, Int64)]()
        site.withLock { site in
            let present = Set(bundle.works.map(\.name))
            if bundle.isFull {
                for (work, generation) in site where !present.contains(work) { removed.append((work, generation)) }
            }
            // A work deleted before this site had it is reported gone too (generation 0), as the agent does.
            for tombstone in bundle.tombstones where !present.contains(tombstone.name) && !removed.contains(where: { $0.0 == tombstone.name }) {
                removed.append((tombstone.name, site[tombstone.name] ?? 0))
            }
            for (work, _) in removed { site[work] = nil }
            for work in bundle.works where site[work.name] != work.generation {
                site[work.name] = work.generation
                changed.append(work)
            }
        }
        for work in changed {
            let applied = Timeline.Key(cluster: name, work: work.name, generation: work.generation, kind: .applied)
            timeline?.record(applied, at: now)
            outbox.put(
                WorkStatusUpdate(name: work.name, observedGeneration: work.generation, status: Self.status(of: work, at: date)),
                Timeline.Key(cluster: name, work: work.name, generation: work.generation, kind: .acknowledged))
        }
        for (work, generation) in removed {
            timeline?.record(Timeline.Key(cluster: name, work: work, generation: generation, kind: .removed), at: now)
            outbox.put(
                WorkStatusUpdate(name: work, observedGeneration: generation, status: nil, deleted: true),
                Timeline.Key(cluster: name, work: work, generation: generation, kind: .removalAcknowledged))
        }
    }

    /// What a real agent reports for a work whose every manifest applied and is ready.
    static func status(of work: ManifestWork, at now: Date) -> ManifestWork.Status {
        let generation = work.generation
        func conditions(_ applied: String, _ available: String) -> [Condition] {
            [
                Condition(type: ConditionType.applied, status: Condition.true, reason: applied, message: "Apply manifest complete", lastTransitionTime: now, observedGeneration: generation),
                Condition(type: ConditionType.available, status: Condition.true, reason: available, message: "Resource is available", lastTransitionTime: now, observedGeneration: generation),
            ]
        }
        let manifests = work.spec.workload.manifests.enumerated().compactMap { ordinal, manifest in
            ManifestKey(manifest: manifest).map { ManifestCondition(resourceMeta: ResourceMeta(ordinal: ordinal, key: $0), conditions: conditions("AppliedManifestComplete", "ResourceAvailable")) }
        }
        return ManifestWork.Status(
            conditions: conditions("AppliedManifestWorkComplete", "ResourcesAvailable"), resourceStatus: ManifestWork.ResourceStatus(manifests: manifests))
    }

    /// One status report with one work's update, outside the poll loop: the bench's status-ingest phase.
    func report(_ update: WorkStatusUpdate) async throws {
        try await client.report(StatusReport(works: [update]), identity: identity)
    }
}
