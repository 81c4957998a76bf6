import AsyncHTTPClient
import CairnAgent
import CairnCommon
import Foundation
import Synchronization

/// One simulated site, real on the wire: its own key and client certificate, enrolment with a CSR, mTLS
/// long-polls and heartbeats over its own connections, bundles verified with the hub's signature. It shares the
/// bench process (and one HTTP client) to stay cheap, and keeps no cache or cluster of its own.
final class SimulatedAgent: Sendable {
    let name: String
    let identity: AgentIdentity
    let client: HubClient
    /// When the agent last got an answer from the hub (a heartbeat or a poll).
    let lastAnswer = Mutex<Date?>(nil)
    let revision = Mutex<Int64?>(nil)
    let shed = Atomic<Int>(0)

    private init(name: String, identity: AgentIdentity, client: HubClient) {
        self.name = name
        self.identity = identity
        self.client = client
    }

    /// Enrols with an auto-approving token and returns the agent, holding its certificate.
    static func enrol(name: String, http: HTTPClient, hubURL: String, caPEM: String, fingerprint: String, token: String) async throws -> SimulatedAgent {
        var identity = AgentIdentity(hubURL: hubURL, clusterName: name, labels: ["bench": "true"], caPEM: caPEM, caFingerprint: fingerprint)
        let key = AgentKey.ephemeral()
        let anonymous = HubClient(http: http, baseURL: hubURL, tls: try identity.anonymousTLS(), timeout: .seconds(60))
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
        return SimulatedAgent(name: name, identity: identity, client: HubClient(http: http, baseURL: hubURL, tls: try identity.tls(key: key), timeout: .seconds(60)))
    }

    /// Heartbeat, then long-poll, forever; after a failure, jittered backoff (or what Retry-After says), then
    /// a heartbeat again — so the moment the hub is back is the moment the agent says so.
    func run(pollWait: Double) async {
        var attempt = 0
        var needHeartbeat = true
        while !Task.isCancelled {
            do {
                if needHeartbeat {
                    _ = try await client.heartbeat(Heartbeat(claims: [ClusterClaim(name: "adapter", value: "bench")], allocatable: [:]), identity: identity)
                    lastAnswer.withLock { $0 = Date() }
                    needHeartbeat = false
                    attempt = 0
                }
                let since = revision.withLock { $0 }
                let answer = try await client.bundle(since: since, wait: pollWait, identity: identity, maxBytes: 64 << 20)
                lastAnswer.withLock { $0 = Date() }
                if case .bundle(let bytes, let digest, let stateDigest, let signature) = answer {
                    let (bundle, _) = try BundleVerifier(identity: identity).verify(bytes: bytes, digest: digest, stateDigest: stateDigest, signature: signature, since: since)
                    revision.withLock { $0 = bundle.revision }
                }
            } catch {
                if Task.isCancelled { return }
                needHeartbeat = true
                attempt += 1
                var delay = min(30, 0.2 * pow(2, Double(min(attempt, 10))))
                delay = Double.random(in: delay / 2...delay)
                if let retryAfter = (error as? HubError)?.retryAfter {
                    shed.add(1, ordering: .relaxed)
                    delay = Double(retryAfter) * Double.random(in: 1...1.5)
                }
                try? await Task.sleep(for: .milliseconds(Int64(delay * 1000)))
            }
        }
    }
}
