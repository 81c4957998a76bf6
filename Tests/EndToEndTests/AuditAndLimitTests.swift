import AsyncHTTPClient
import CairnAgent
import CairnCommon
import CairnHub
import CairnTestSupport
import Foundation
import NIOCore
import NIOHTTP1
import Testing

@Suite(.serialized) struct AuditAndLimitTests {
    @Test func `every administrator write is audited, refused ones included`() async throws {
        let directory = try TemporaryDirectory("audit")
        defer { directory.remove() }
        let hub = try await TestHub(stateDirectory: directory.appending("hub"))
        let viewer = try await HubServer.createAdminToken(stateDirectory: directory.appending("hub"), role: .viewer)
        let token = try await hub.admin { try await $0.createToken(TokenRequest(autoApprove: false)) }
        _ = try await hub.admin { try await $0.revokeToken(token.id) }
        _ = try? await hub.admin(token: viewer) { try await $0.createToken(TokenRequest()) }
        _ = try await hub.admin { try await $0.clusters() }
        let entries = try await hub.admin { try await $0.audit(limit: 10) }
        #expect(entries.map(\.action) == ["POST /api/v1/tokens", "DELETE /api/v1/tokens/\(token.id)", "POST /api/v1/tokens"])
        #expect(entries[0].status == 403 && entries[0].actor.hasPrefix("viewer:"))
        #expect(entries[1].status == 200 && entries[1].actor.hasPrefix("admin:"))
        #expect(entries[2].status == 201 && entries[2].result == "ok")
        #expect(!entries.contains { $0.actor.contains(hub.adminToken) || $0.actor.contains(viewer) })
        try await hub.stop()
    }

    @Test func `enrolment is rate-limited per source address`() async throws {
        let directory = try TemporaryDirectory("ratelimit")
        defer { directory.remove() }
        // The bucket refills slowly enough that no machine is slow enough to earn back the ten requests past the
        // burst: at the default 2 per second, a loaded machine taking 0.3 s per request never ran out.
        let hub = try await TestHub(stateDirectory: directory.appending("hub")) { $0.enrolmentPerSecond = 0.05 }
        let tls = try TrustMaterial.clientTLS(roots: TrustMaterial.certificates(pem: String(contentsOfFile: hub.caPath, encoding: .utf8)))
        let csr = try AgentKey.loadOrCreate(path: directory.appending("probe.key")).csr(cluster: "guess")
        let body = try CairnJSON.encode(EnrolRequest(token: "nope.nope", clusterName: "guess", labels: nil, credentialHash: String(repeating: "a", count: 64), csr: csr, claims: nil))
        let (statuses, retryAfter) = try await withHTTPClient { http in
            var statuses = [Int]()
            var retryAfter: String?
            for _ in 0..<30 {
                var request = HTTPClientRequest(url: hub.url + "/api/v1/agent/enrol")
                request.method = .POST
                request.tlsConfiguration = tls
                request.body = .bytes(body)
                let response = try await http.execute(request, timeout: .seconds(30))
                _ = try await response.body.collect(upTo: 1 << 20)
                statuses.append(Int(response.status.code))
                if response.status.code == 429 { retryAfter = response.headers.first(name: "Retry-After") }
            }
            return (statuses, retryAfter)
        }
        #expect(statuses.prefix(20).allSatisfy { $0 == 401 })
        #expect(statuses.contains(429))
        #expect(retryAfter != nil)
        try await hub.stop()
    }
}
