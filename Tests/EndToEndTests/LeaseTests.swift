import CairnCommon
import CairnTestSupport
import Foundation
import Testing

@Suite(.serialized) struct LeaseTests {
    @Test func `a silent cluster is marked Unknown, and comes back Available when it returns`() async throws {
        let directory = try TemporaryDirectory("lease")
        defer { directory.remove() }
        let hub = try await TestHub(stateDirectory: directory.appending("hub"), heartbeat: 0.2, leaseTimeout: 1)
        let token = try await hub.token(autoApprove: true)
        let agent = try TestAgent(stateDirectory: directory.appending("c1"), hub: hub, token: token, name: "c1")
        func available() async throws -> String? {
            try await hub.admin { try await $0.cluster("c1") }.status.conditions[type: ConditionType.available]?.status
        }
        try await eventually("c1 Available") { try await available() == Condition.true }
        try await agent.stop()
        try await eventually("c1 Unknown after its lease ran out", timeout: 10) { try await available() == Condition.unknown }
        #expect(try await hub.admin { try await $0.cluster("c1") }.status.conditions[type: ConditionType.available]?.reason == "LeaseExpired")
        let back = try TestAgent(stateDirectory: directory.appending("c1"))
        try await eventually("c1 Available again") { try await available() == Condition.true }
        try await back.stop()
        try await hub.stop()
    }

    /// An agent polling more often than it must heartbeat leaves out the heartbeats that would say nothing new: its
    /// polls keep it Available, several leases long. Marked silent anyway, it hears so on its next poll's answer.
    @Test func `polls renew the lease, and heartbeats that say nothing new are left out`() async throws {
        let directory = try TemporaryDirectory("poll-lease")
        defer { directory.remove() }
        let hub = try await TestHub(stateDirectory: directory.appending("hub"), heartbeat: 1, leaseTimeout: 3)
        let token = try await hub.token(autoApprove: true)
        let agent = try TestAgent(stateDirectory: directory.appending("c1"), hub: hub, token: token, name: "c1", pollWait: 0.3)
        func available() async throws -> String? {
            try await hub.admin { try await $0.cluster("c1") }.status.conditions[type: ConditionType.available]?.status
        }
        try await hub.waitJoined("c1")
        try await eventually("c1 Available") { try await available() == Condition.true }
        // Its first beats carry the conditions of its first bundle; then nothing changes.
        try await Task.sleep(for: .seconds(2))
        let (beats, polls) = (hub.server.leaseCounters.heartbeats, hub.server.leaseCounters.polls)
        // Seven seconds: seven heartbeats at the interval, more than two leases.
        for _ in 0..<7 {
            try await Task.sleep(for: .seconds(1))
            #expect(try await available() == Condition.true)
        }
        #expect(hub.server.leaseCounters.heartbeats - beats <= 1, "heartbeats that said nothing new were sent")
        #expect(hub.server.leaseCounters.polls - polls >= 7, "polls did not renew the lease")

        // Marked silent behind its back: the next poll's answer asks for a heartbeat, which makes it Available. (Not
        // read back as Unknown here: the agent polls every 0.3 s, and under load its heartbeat can come first.)
        let beatsBefore = hub.server.leaseCounters.heartbeats
        let marked = try await hub.store.markSilentClusters(before: Date().addingTimeInterval(60), now: Date())
        #expect(marked == ["c1"])
        try await eventually("the heartbeat its poll asked for", timeout: 5) { hub.server.leaseCounters.heartbeats > beatsBefore }
        try await eventually("c1 Available again after that heartbeat", timeout: 5) { try await available() == Condition.true }

        // Gone: its lease runs out as before.
        try await agent.stop()
        try await eventually("c1 Unknown after its lease ran out", timeout: 10) { try await available() == Condition.unknown }
        try await hub.stop()
    }

    @Test func `past the heartbeats the hub takes a second, the interval and the lease stretch together`() async throws {
        let directory = try TemporaryDirectory("pacing")
        defer { directory.remove() }
        // Two clusters at two heartbeats a second: every 1 s instead of 0.2 s, so the 1 s lease becomes 5 s.
        let hub = try await TestHub(stateDirectory: directory.appending("hub"), heartbeat: 0.2, leaseTimeout: 1) { $0.heartbeatsPerSecond = 2 }
        let token = try await hub.token(autoApprove: true)
        let c1 = try TestAgent(stateDirectory: directory.appending("c1"), hub: hub, token: token, name: "c1")
        let c2 = try TestAgent(stateDirectory: directory.appending("c2"), hub: hub, token: token, name: "c2")
        try await hub.waitJoined("c1")
        try await hub.waitJoined("c2")
        try await eventually("the interval stretched to 1 s") { hub.server.pacing.currentInterval == 1 }
        #expect(hub.server.pacing.currentLeaseTimeout == 5)
        func available(_ name: String) async throws -> String? {
            try await hub.admin { try await $0.cluster(name) }.status.conditions[type: ConditionType.available]?.status
        }
        // Both beat at the stretched interval and stay Available past the configured lease.
        try await Task.sleep(for: .seconds(2.5))
        #expect(try await available("c1") == Condition.true)
        #expect(try await available("c2") == Condition.true)
        try await c1.stop()
        // Silent for twice the configured lease: still within the stretched one.
        try await Task.sleep(for: .seconds(2))
        #expect(try await available("c1") == Condition.true)
        try await eventually("c1 Unknown once the stretched lease ran out", timeout: 15) { try await available("c1") == Condition.unknown }
        #expect(try await available("c2") == Condition.true)
        try await c2.stop()
        try await hub.stop()
    }

    @Test func `a denied cluster is cut off and keeps what it runs`() async throws {
        let directory = try TemporaryDirectory("deny")
        defer { directory.remove() }
        let hub = try await TestHub(stateDirectory: directory.appending("hub"))
        let token = try await hub.token(autoApprove: true)
        let agent = try TestAgent(stateDirectory: directory.appending("c1"), hub: hub, token: token, name: "c1")
        try await hub.waitJoined("c1")
        let first = ManifestWork(metadata: ObjectMeta(name: "one"), spec: .init(manifests: [["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "one", "namespace": "default"]]]))
        _ = try await hub.admin { try await $0.apply(first, cluster: "c1") }
        try await eventually("the first work on the site") { try await agent.object("ConfigMap", "one", namespace: "default", apiVersion: "v1") != nil }
        _ = try await hub.admin { try await $0.deny("c1") }
        var second = first
        second.metadata.name = "two"
        second.spec.workload.manifests = [["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "two", "namespace": "default"]]]
        _ = try await hub.admin { try await $0.apply(second, cluster: "c1") }
        // Give the agent time to try; nothing may reach it, and what it runs stays.
        try await Task.sleep(for: .seconds(1.5))
        #expect(try await agent.object("ConfigMap", "two", namespace: "default", apiVersion: "v1") == nil)
        #expect(try await agent.object("ConfigMap", "one", namespace: "default", apiVersion: "v1") != nil)
        try await agent.stop()
        try await hub.stop()
    }
}
