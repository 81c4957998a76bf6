import CairnAgent
import CairnCommon
import CairnHub
import CairnTestSupport
import Foundation
import Synchronization
import Testing

@Suite(.serialized) struct RenewalTests {
    func configMap(_ name: String) -> ManifestWork {
        ManifestWork(metadata: ObjectMeta(name: name), spec: .init(manifests: [["apiVersion": "v1", "kind": "ConfigMap", "metadata": [.init("name"): .string(name), "namespace": "default"]]]))
    }

    @Test func `a certificate is renewed over mTLS two thirds into its lifetime, without a token`() async throws {
        let directory = try TemporaryDirectory("renew")
        defer { directory.remove() }
        let hub = try await TestHub(stateDirectory: directory.appending("hub"))
        let token = try await hub.token(autoApprove: true, uses: 1)
        let jump = Mutex<TimeInterval>(0)
        let agent = try TestAgent(stateDirectory: directory.appending("c1"), hub: hub, token: token, name: "c1", clock: { Date().addingTimeInterval(jump.withLock { $0 }) })
        try await hub.waitJoined("c1")
        let first = try agent.cache.identity()?.certificatePEM
        // Two thirds of a day later, as the agent sees it.
        jump.withLock { $0 = 0.7 * 86_400 }
        try await eventually("a renewed certificate") { try agent.cache.identity()?.certificatePEM != first }
        // The renewed certificate is the one that works now.
        _ = try await hub.admin { try await $0.apply(configMap("after-renewal"), cluster: "c1") }
        try await eventually("a work to land after renewal") { try await agent.object("ConfigMap", "after-renewal", namespace: "default", apiVersion: "v1") != nil }
        try await agent.stop()
        try await hub.stop()
    }

    @Test func `a site whose certificate expired gets a new one only when an administrator allows it`() async throws {
        let directory = try TemporaryDirectory("expired")
        defer { directory.remove() }
        let hub = try await TestHub(stateDirectory: directory.appending("hub"), certificateLifetime: 5)
        let token = try await hub.token(autoApprove: true, uses: 1)
        let agent = try TestAgent(stateDirectory: directory.appending("c1"), hub: hub, token: token, name: "c1")
        try await hub.waitJoined("c1")
        try await agent.stop()
        // The last certificate the hub issued, which may be newer than the agent's: under load the join can take two
        // thirds of the lifetime, and a renewal the hub answered just as the agent stopped is the site's to collect.
        let lastIssued = try #require(try await hub.store.identity(cluster: "c1")?.certificate)
        let expiresAt = try #require(try TrustMaterial.certificates(pem: lastIssued).first?.notValidAfter)
        try await Task.sleep(for: .seconds(max(0, expiresAt.timeIntervalSinceNow) + 0.5))

        let back = try TestAgent(stateDirectory: directory.appending("c1"))
        func holdsValidCertificate() throws -> Bool { (try back.cache.identity()?.certificateWindow?.expiresAt).map { $0 > Date() } ?? false }
        _ = try await hub.admin { try await $0.apply(configMap("while-expired"), cluster: "c1") }
        try await Task.sleep(for: .seconds(1.5))
        #expect(try !holdsValidCertificate(), "no silent re-enrolment")
        #expect(try await back.object("ConfigMap", "while-expired", namespace: "default", apiVersion: "v1") == nil)

        _ = try await hub.admin { try await $0.approve("c1", renew: true) }
        try await eventually("a new certificate after approve --renew") { try holdsValidCertificate() }
        try await eventually("the waiting work to land") { try await back.object("ConfigMap", "while-expired", namespace: "default", apiVersion: "v1") != nil }
        try await back.stop()
        try await hub.stop()
    }
}
