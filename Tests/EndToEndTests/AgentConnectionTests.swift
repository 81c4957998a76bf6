import CairnAgent
import CairnCommon
import CairnTestSupport
import Foundation
import Testing

/// The agent's one connection to its hub, and what it does with it.
@Suite struct AgentConnectionTests {
    /// A connection keeps the buffers a burst grew for the rest of its life (~0.8 MB after kube-prometheus), so after
    /// a large bundle the agent moves to a new connection and the old one closes; a small bundle changes nothing.
    /// Here "large" is set low, so Online Boutique (~2.4 KiB compressed) is large and a Service or two of
    /// kube-prometheus (well under 1 KiB) is small: the path kube-prometheus takes past the default 64 KiB, without
    /// its cost in a debug build.
    @Test func `after a large bundle the agent moves to a new connection, and the old one closes`() async throws {
        let directory = try TemporaryDirectory("agent-connection")
        defer { directory.remove() }
        let hub = try await TestHub(stateDirectory: directory.appending("hub"))
        let proxy = try await FaultProxy(to: hub.port)
        let agent = try TestAgent(
            stateDirectory: directory.appending("c1"), hub: proxy.url, pin: hub.fingerprint, token: try await hub.token(autoApprove: true), name: "c1",
            configure: { $0.freshConnectionAfter = 1500 }
        )
        try await hub.waitJoined("c1", timeout: 30)
        // Enrolment's connections stay in the client's pool until idle for a minute; polls, heartbeats and reports
        // share one more.
        let connections = proxy.connections

        func deliver(_ name: String, _ manifests: [JSONValue]) async throws {
            _ = try await hub.admin { try await $0.apply(ManifestWork(metadata: ObjectMeta(name: name), spec: .init(manifests: manifests)), cluster: "c1") }
            let revision = try await hub.store.revision(cluster: "c1")
            try await eventually("\(name) on the site", timeout: 30) { try agent.cache.revision() == revision }
        }
        let services = try await Corpus.kubePrometheus().flatMap(\.documents).filter { $0["kind"] == "Service" }
        try await deliver("small", Array(services.prefix(2)))
        #expect(proxy.connections == connections, "a small bundle keeps the connection")

        try await deliver("large", try Corpus.onlineBoutique())
        // The old client is shut down with every connection it had, enrolment's too: one is left, the new one.
        try await eventually("a new connection, and the old ones closed", timeout: 30) {
            proxy.connections == connections + 1 && proxy.open == 1
        }

        // The site goes on over the new one.
        try await deliver("small", [try #require(services.first)])
        #expect(proxy.connections == connections + 1)
        #expect(proxy.open == 1)
        try await agent.stop()
        try await proxy.stop()
        try await hub.stop()
    }
}
