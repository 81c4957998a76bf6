import AsyncHTTPClient
import CairnAgent
import CairnCommon
import CairnHub
import CairnTestSupport
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import Testing

/// The trust model from the outside, over real TLS sockets on 127.0.0.1.
@Suite(.serialized) struct TrustTests {
    /// A request made with a site's own key and certificate (or none); returns the status.
    func status(_ hub: TestHub, _ method: HTTPMethod, _ path: String, tls: TLSConfiguration, body: String? = nil) async throws -> Int {
        var request = HTTPClientRequest(url: hub.url + path)
        request.method = method
        request.tlsConfiguration = tls
        if let body { request.body = .bytes(Array(body.utf8)) }
        return try await withHTTPClient { http in
            let response = try await http.execute(request, timeout: .seconds(30))
            _ = try await response.body.collect(upTo: 1 << 24)
            return Int(response.status.code)
        }
    }

    @Test func `one cluster's certificate can neither read another's bundle nor write its status`() async throws {
        let directory = try TemporaryDirectory("trust-isolation")
        defer { directory.remove() }
        let hub = try await TestHub(stateDirectory: directory.appending("hub"))
        let token = try await hub.token(autoApprove: true)
        let c1 = try TestAgent(stateDirectory: directory.appending("c1"), hub: hub, token: token, name: "c1")
        let c2 = try TestAgent(stateDirectory: directory.appending("c2"), hub: hub, token: token, name: "c2")
        try await hub.waitJoined("c1")
        try await hub.waitJoined("c2")
        let work = ManifestWork(metadata: ObjectMeta(name: "db"), spec: .init(manifests: [["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "db", "namespace": "default"]]]))
        _ = try await hub.admin { try await $0.apply(work, cluster: "c2") }
        try await eventually("c2's work Available") {
            try await hub.admin { try await $0.work("db", cluster: "c2") }.status?.conditions.isTrue(ConditionType.available) == true
        }
        let before = try await hub.admin { try await $0.work("db", cluster: "c2") }
        let asC1 = try c1.clientTLS()
        #expect(try await status(hub, .GET, "/api/v1/agent/clusters/c1/bundle?wait=0", tls: asC1) == 200)
        #expect(try await status(hub, .GET, "/api/v1/agent/clusters/c2/bundle?wait=0", tls: asC1) == 403)
        let forged = #"{"works":[{"name":"db","observedGeneration":1,"deleted":true}]}"#
        #expect(try await status(hub, .POST, "/api/v1/agent/clusters/c2/status", tls: asC1, body: forged) == 403)
        #expect(try await status(hub, .POST, "/api/v1/agent/clusters/c2/heartbeat", tls: asC1, body: #"{"claims":[],"allocatable":{}}"#) == 403)
        #expect(try await hub.admin { try await $0.work("db", cluster: "c2") } == before)
        // A site reports its own verification conditions, never the hub's.
        let spoof = #"{"claims":[],"allocatable":{},"conditions":[{"type":"Available","status":"True","reason":"x","message":"","lastTransitionTime":"2026-01-01T00:00:00Z"}]}"#
        #expect(try await status(hub, .POST, "/api/v1/agent/clusters/c1/heartbeat", tls: asC1, body: spoof) == 400)
        try await c1.stop()
        try await c2.stop()
        try await hub.stop()
    }

    @Test func `no client certificate, a denied, a removed or an expired certificate is rejected`() async throws {
        let directory = try TemporaryDirectory("trust-revoke")
        defer { directory.remove() }
        let hub = try await TestHub(stateDirectory: directory.appending("hub"))
        let token = try await hub.token(autoApprove: true)
        let agent = try TestAgent(stateDirectory: directory.appending("c1"), hub: hub, token: token, name: "c1")
        try await hub.waitJoined("c1")
        let asC1 = try agent.clientTLS()
        let anonymous = try TrustMaterial.clientTLS(roots: TrustMaterial.certificates(pem: String(contentsOfFile: hub.caPath, encoding: .utf8)))
        try await agent.stop()
        #expect(try await status(hub, .GET, "/api/v1/agent/clusters/c1/bundle?wait=0", tls: anonymous) == 401)
        #expect(try await status(hub, .GET, "/api/v1/agent/clusters/c1/bundle?wait=0", tls: asC1) == 200)
        _ = try await hub.admin { try await $0.deny("c1") }
        #expect(try await status(hub, .GET, "/api/v1/agent/clusters/c1/bundle?wait=0", tls: asC1) == 403)
        try await hub.admin { try await $0.removeCluster("c1") }
        #expect(try await status(hub, .GET, "/api/v1/agent/clusters/c1/bundle?wait=0", tls: asC1) == 401)
        try await hub.stop()

        // A certificate past its lifetime fails the TLS handshake itself.
        let short = try await TestHub(stateDirectory: directory.appending("hub-short"), certificateLifetime: 5)
        let shortToken = try await short.token(autoApprove: true)
        let brief = try TestAgent(stateDirectory: directory.appending("c9"), hub: short, token: shortToken, name: "c9")
        try await short.waitJoined("c9")
        let expiring = try brief.clientTLS()
        let expiresAt = try #require(try brief.cache.identity()?.certificateWindow?.expiresAt)
        try await brief.stop()
        #expect(try await status(short, .GET, "/api/v1/agent/clusters/c9/bundle?wait=0", tls: expiring) == 200)
        try await Task.sleep(for: .seconds(max(0, expiresAt.timeIntervalSinceNow) + 0.5))
        await #expect(throws: (any Error).self) { try await status(short, .GET, "/api/v1/agent/clusters/c9/bundle?wait=0", tls: expiring) }
        try await short.stop()
    }

    @Test func `a viewer token reads but cannot write`() async throws {
        let directory = try TemporaryDirectory("trust-viewer")
        defer { directory.remove() }
        let hub = try await TestHub(stateDirectory: directory.appending("hub"))
        let viewer = try await HubServer.createAdminToken(stateDirectory: directory.appending("hub"), role: .viewer)
        #expect(try await hub.admin(token: viewer) { try await $0.clusters() }.isEmpty)
        let error = await #expect(throws: CairnError.self) { try await hub.admin(token: viewer) { try await $0.createToken(TokenRequest()) } }
        #expect(error?.code == .forbidden)
        #expect(try await hub.admin { try await $0.tokens() }.isEmpty)
        try await hub.stop()
    }

    @Test func `expired, revoked and used-up tokens cannot enrol`() async throws {
        let directory = try TemporaryDirectory("trust-tokens")
        defer { directory.remove() }
        let hub = try await TestHub(stateDirectory: directory.appending("hub"))
        let expired = try await hub.token(autoApprove: true, ttl: 0.5)
        let revoked = try await hub.token(autoApprove: true)
        _ = try await hub.admin { try await $0.revokeToken(String(revoked.split(separator: ".")[0])) }
        let once = try await hub.token(autoApprove: true, uses: 1)
        let first = try TestAgent(stateDirectory: directory.appending("first"), hub: hub, token: once, name: "first")
        try await hub.waitJoined("first")
        try await Task.sleep(for: .seconds(0.6))
        for (name, token) in [("late", expired), ("revoked", revoked), ("second", once)] {
            let agent = try TestAgent(stateDirectory: directory.appending(name), hub: hub, token: token, name: name)
            let failure = try await agent.failure()
            #expect((failure as? HubError)?.status == 401, "\(name): \(String(describing: failure))")
        }
        #expect(try await hub.admin { try await $0.clusters() }.map(\.name) == ["first"])
        try await first.stop()
        try await hub.stop()
    }

    @Test func `a wrong CA fingerprint makes the agent refuse the hub`() async throws {
        let directory = try TemporaryDirectory("trust-pin")
        defer { directory.remove() }
        let hub = try await TestHub(stateDirectory: directory.appending("hub"))
        let token = try await hub.token(autoApprove: true)
        let agent = try TestAgent(stateDirectory: directory.appending("c1"), hub: hub.url, pin: "sha256:" + String(repeating: "0", count: 64), token: token, name: "c1")
        let failure = try await agent.failure()
        #expect((failure as? CairnError)?.field == "ca-fingerprint")
        #expect(try await hub.admin { try await $0.clusters() }.isEmpty)
        try await hub.stop()
    }

    @Test func `a cache altered on disk is detected at start and never applied`() async throws {
        let directory = try TemporaryDirectory("trust-cache")
        defer { directory.remove() }
        let hub = try await TestHub(stateDirectory: directory.appending("hub"))
        let token = try await hub.token(autoApprove: true)
        let agent = try TestAgent(stateDirectory: directory.appending("c1"), hub: hub, token: token, name: "c1")
        try await hub.waitJoined("c1")
        let real = ManifestWork(metadata: ObjectMeta(name: "real"), spec: .init(manifests: [["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "real", "namespace": "default"]]]))
        _ = try await hub.admin { try await $0.apply(real, cluster: "c1") }
        try await eventually("the real work on the site") { try await agent.object("ConfigMap", "real", namespace: "default", apiVersion: "v1") != nil }
        try await agent.stop()

        // Someone with the disk slips a work into the cache, bypassing the signed path.
        var evil = real
        evil.metadata.name = "evil"
        evil.metadata.generation = 1
        evil.spec.workload.manifests = [["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "evil", "namespace": "default"]]]
        try agent.cache.commit(WorkBundle(cluster: "c1", revision: try agent.cache.revision()!, since: nil, works: [try agent.cache.works()[0].work, evil]))
        let fullBefore = hub.server.bundleCounters.full

        let restarted = try TestAgent(stateDirectory: directory.appending("c1"))
        try await eventually("a full bundle to replace the cache") { hub.server.bundleCounters.full > fullBefore }
        try await eventually("the cache to hold only the hub's work") { try restarted.cache.works().filter { !$0.deleting }.map(\.work.name) == ["real"] }
        try await Task.sleep(for: .milliseconds(500))
        #expect(try await restarted.object("ConfigMap", "evil", namespace: "default", apiVersion: "v1") == nil)
        #expect(try await restarted.object("ConfigMap", "real", namespace: "default", apiVersion: "v1") != nil)
        // The site told the hub what happened.
        try await eventually("the hub to see the cache was restored") {
            try await hub.admin { try await $0.cluster("c1") }.status.conditions[type: ConditionType.cacheVerified]?.reason == "RestoredFromHub"
        }
        try await restarted.stop()
        try await hub.stop()
    }
}

@Suite(.serialized) struct ImpostorTests {
    @Test func `a second agent claiming an enrolled name with another key is held pending and flagged`() async throws {
        let directory = try TemporaryDirectory("impostor")
        defer { directory.remove() }
        let hub = try await TestHub(stateDirectory: directory.appending("hub"))
        let token = try await hub.token(autoApprove: true)
        let owner = try TestAgent(stateDirectory: directory.appending("owner"), hub: hub, token: token, name: "c1")
        try await hub.waitJoined("c1")

        let impostor = try TestAgent(stateDirectory: directory.appending("impostor"), hub: hub, token: token, name: "c1")
        try await eventually("the cluster to be flagged") {
            try await hub.admin { try await $0.cluster("c1") }.status.conditions[type: "EnrolmentConflict"]?.status == Condition.true
        }
        let work = ManifestWork(metadata: ObjectMeta(name: "mine"), spec: .init(manifests: [["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "mine", "namespace": "default"]]]))
        _ = try await hub.admin { try await $0.apply(work, cluster: "c1") }
        try await eventually("the owner to keep receiving its works") { try await owner.object("ConfigMap", "mine", namespace: "default", apiVersion: "v1") != nil }
        #expect(try impostor.cache.identity()?.enrolment == .pending)
        #expect(try impostor.cache.identity()?.certificatePEM == nil)
        #expect(try await impostor.site.objects().isEmpty)
        #expect(try await hub.admin { try await $0.clusters() }.map(\.name) == ["c1"])
        try await impostor.stop()
        try await owner.stop()
        try await hub.stop()
    }
}
