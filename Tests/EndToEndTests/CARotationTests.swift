import AsyncHTTPClient
import CairnAgent
import CairnCommon
import CairnHub
import CairnTestSupport
import Foundation
import NIOCore
import NIOSSL
import Synchronization
import Testing

@Suite(.serialized) struct CARotationTests {
    @Test func `CA rotation keeps every agent connected, then retires the old CA`() async throws {
        let directory = try TemporaryDirectory("rotation")
        defer { directory.remove() }
        let hubDirectory = directory.appending("hub")
        var hub = try await TestHub(stateDirectory: hubDirectory)
        let port = hub.port
        let pki = hub.server.configuration.pkiDirectory
        let token = try await hub.token(autoApprove: true)
        let jump = Mutex<TimeInterval>(0)
        let clock: @Sendable () -> Date = { Date().addingTimeInterval(jump.withLock { $0 }) }
        let agents = try ["c1", "c2"].map { try TestAgent(stateDirectory: directory.appending($0), hub: hub, token: token, name: $0, clock: clock) }
        for name in ["c1", "c2"] {
            try await hub.waitJoined(name)
        }
        let firstIdentity = try #require(try agents[0].cache.identity())
        let oldFingerprint = hub.fingerprint

        func restart(after step: CARotation.Step) async throws {
            try await hub.stop()
            _ = try CARotation.run(step, pkiDirectory: pki)
            hub = try await TestHub(stateDirectory: hubDirectory, port: port)
        }
        func delivered(_ name: String) async throws {
            let work = ManifestWork(metadata: ObjectMeta(name: name), spec: .init(manifests: [["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": .string(name), "namespace": "default"]]]))
            for cluster in ["c1", "c2"] { _ = try await hub.admin { try await $0.apply(work, cluster: cluster) } }
            // After a restart, on a loaded machine, a site's first call may sit out its request timeout (5 s) or its
            // TLS handshake timeout (10 s) before the retry that succeeds: the wait is above both.
            for agent in agents {
                try await eventually("\(name) on every site", timeout: 30) {
                    try await agent.object("ConfigMap", name, namespace: "default", apiVersion: "v1") != nil
                }
            }
        }
        func renewAll() async throws {
            let before = try agents.map { try $0.cache.identity()?.certificatePEM }
            jump.withLock { $0 = 0.7 * 86_400 }
            for (index, agent) in agents.enumerated() {
                try await eventually("a renewal") { try agent.cache.identity()?.certificatePEM != before[index] }
            }
            jump.withLock { $0 = 0 }
        }

        // 1. Stage: the hub trusts both CAs and agents learn the successor at renewal.
        try await restart(after: .stage)
        try await delivered("staged")
        try await renewAll()
        for agent in agents { #expect(try TrustMaterial.certificates(pem: try #require(try agent.cache.identity()?.caPEM)).count == 2) }

        // 2. Activate: the new CA signs the serving certificate; agents trust it already.
        try await restart(after: .activate)
        #expect(hub.fingerprint != oldFingerprint)
        try await delivered("activated")
        try await renewAll()

        // 3. Retire: only the new CA is trusted, and every site still works.
        try await restart(after: .retire)
        try await delivered("retired")

        // A client certificate from the old CA is refused now.
        var stale = firstIdentity
        stale.caPEM = try String(contentsOfFile: hub.caPath, encoding: .utf8)
        let staleTLS = try stale.tls(key: try AgentKey.loadOrCreate(path: agents[0].daemon.configuration.keyPath))
        var request = HTTPClientRequest(url: hub.url + "/api/v1/agent/clusters/c1/bundle?wait=0")
        request.tlsConfiguration = staleTLS
        let accepted = try await withHTTPClient { http in
            do {
                let response = try await http.execute(request, timeout: .seconds(10))
                _ = try await response.body.collect(upTo: 1 << 24)
                return response.status == .ok
            } catch {
                return false
            }
        }
        #expect(!accepted)
        for agent in agents { try await agent.stop() }
        try await hub.stop()
    }
}
