import CairnCommon
import CairnTestSupport
import Foundation
import Testing

/// The ETSI demo's reference scenarios, with real agents on three simulated sites.
@Suite(.serialized) struct ReferenceScenarioTests {
    func service(replicas: Int64 = 2, version: String? = nil, networkPolicy: Bool = false) throws -> ManifestWork.Spec {
        var manifests = try Corpus.threeComponentService(frontendReplicas: replicas)
        if let version {
            for index in manifests.indices where manifests[index]["kind"] == "Deployment" && manifests[index]["metadata"]?["name"] == "frontend" {
                guard var containers = manifests[index]["spec"]?["template"]?["spec"]?["containers"]?.arrayValue else { continue }
                containers[0]["image"] = .string("us-central1-docker.pkg.dev/google-samples/microservices-demo/frontend:\(version)")
                manifests[index]["spec"]?["template"]?["spec"]?["containers"] = .array(containers)
            }
        }
        if networkPolicy {
            manifests.append([
                "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": ["name": "frontend-ingress", "namespace": "shop"],
                "spec": ["podSelector": ["matchLabels": ["app": "frontend"]], "policyTypes": ["Ingress"], "ingress": [["ports": [["port": 8080]]]]],
            ])
        }
        return ManifestWork.Spec(
            manifests: manifests,
            manifestConfigs: [ManifestConfig(resourceIdentifier: .init(group: "apps", resource: "deployments", name: "frontend", namespace: "shop"), feedbackRules: [.init(type: .wellKnownStatus)])])
    }

    func workSet(placement: String, spec: ManifestWork.Spec, strategy: WorkSet.RolloutStrategy? = nil) -> WorkSet {
        WorkSet(metadata: ObjectMeta(name: "shop"), spec: .init(placementRefs: [.init(name: placement, rolloutStrategy: strategy)], manifestWorkTemplate: spec))
    }

    func frontend(_ agent: TestAgent) async throws -> JSONValue? { try await agent.object("Deployment", "frontend", namespace: "shop") }

    @Test func `order, scale, relocate and patch a 3-component service`() async throws {
        let directory = try TemporaryDirectory("etsi")
        defer { directory.remove() }
        let hub = try await TestHub(stateDirectory: directory.appending("hub"), heartbeat: 0.2)
        let token = try await hub.token(autoApprove: true)
        var sites = [String: TestAgent]()
        for (name, platform) in [("c1", "kubernetes"), ("c2", "kubernetes"), ("c3", "openshift")] {
            sites[name] = try TestAgent(stateDirectory: directory.appending(name), hub: hub, token: token, name: name, readyDelay: 0.1, platform: platform)
            try await hub.waitJoined(name)
            _ = try await hub.admin { try await $0.label(name, LabelPatch(set: ["platform": platform])) }
        }
        let kubernetes = Placement.Predicate(requiredClusterSelector: .init(labelSelector: LabelSelector(matchLabels: ["platform": "kubernetes"])))
        _ = try await hub.admin { try await $0.applyPlacement(Placement(metadata: ObjectMeta(name: "web"), spec: .init(numberOfClusters: 1, predicates: [kubernetes]))) }

        // 0. Order: the service lands on exactly one kubernetes cluster.
        _ = try await hub.admin { try await $0.applyWorkSet(workSet(placement: "web", spec: try service())) }
        try await eventually("the service on one cluster", timeout: 20) {
            try await hub.admin { try await $0.workSet("shop") }.status?.phase == "Succeeded"
        }
        var holders = [String]()
        for (name, site) in sites where try await frontend(site) != nil { holders.append(name) }
        #expect(holders.count == 1)
        let first = try #require(holders.first)
        #expect(["c1", "c2"].contains(first))
        let other = first == "c1" ? "c2" : "c1"

        // 1. Scaling 2 → 3: the third replica appears on that cluster and nowhere else.
        _ = try await hub.admin { try await $0.applyWorkSet(workSet(placement: "web", spec: try service(replicas: 3))) }
        try await eventually("readyReplicas 3 on \(first)", timeout: 20) { try await frontend(sites[first]!)?["status"]?["readyReplicas"] == 3 }
        #expect(try await frontend(sites[other]!) == nil)
        #expect(try await frontend(sites["c3"]!) == nil)

        // 3. Relocation: relabel the chosen cluster; the new copy is Available before the old one is removed.
        _ = try await hub.admin { try await $0.label(first, LabelPatch(set: ["platform": "openshift"])) }
        try await eventually("the service to leave \(first)", timeout: 20) { try await frontend(sites[first]!) == nil }
        #expect(try await frontend(sites[other]!)?["status"]?["readyReplicas"] == 3)
        let events = try await hub.admin { try await $0.events(for: "WorkSet/shop", limit: 100) }.reversed()
        let appliedToNew = events.firstIndex { $0.reason == "Applied" && $0.message.hasSuffix("to \(other)") }
        let removedFromOld = events.firstIndex { $0.reason == "Removed" && $0.message.contains("removed from \(first) after \(other) reported Available") }
        #expect(appliedToNew != nil && removedFromOld != nil)
        if let appliedToNew, let removedFromOld { #expect(appliedToNew < removedFromOld) }

        // 2. Security patch: new version and a NetworkPolicy, progressively over every cluster, one at a time.
        _ = try await hub.admin { try await $0.label(first, LabelPatch(set: ["platform": "kubernetes"])) }
        _ = try await hub.admin { try await $0.applyPlacement(Placement(metadata: ObjectMeta(name: "fleet"), spec: .init())) }
        let progressive = WorkSet.RolloutStrategy(type: "Progressive", progressive: .init(maxConcurrency: .count(1), minSuccessTime: "1s", progressDeadline: "1m"))
        let patch = try await hub.admin { try await $0.applyWorkSet(workSet(placement: "fleet", spec: try service(replicas: 3, version: "v0.10.1", networkPolicy: true), strategy: progressive)) }
        let revision = try #require(patch.metadata.generation)
        var mostInFlight = 0
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            let status = try await hub.admin { try await $0.workSet("shop") }.status
            mostInFlight = max(mostInFlight, status?.clusters.filter { $0.state == "Progressing" }.count ?? 0)
            if status?.phase == "Succeeded" && status?.revision == revision { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        let final = try await hub.admin { try await $0.workSet("shop") }
        #expect(final.status?.phase == "Succeeded")
        #expect(final.status?.revision == revision)
        #expect(final.status?.summary.updated == 3)
        #expect(mostInFlight == 1)
        for site in sites.values {
            #expect(try await site.object("NetworkPolicy", "frontend-ingress", namespace: "shop", apiVersion: "networking.k8s.io/v1") != nil)
        }
        // Each cluster soaked at least minSuccessTime before the next began.
        let applied = try await hub.admin { try await $0.events(for: "WorkSet/shop", limit: 100) }
            .filter { $0.reason == "Applied" && $0.message.hasPrefix("revision \(revision) ") }.map(\.time).sorted()
        #expect(applied.count == 3)
        for (earlier, later) in zip(applied, applied.dropFirst()) { #expect(later.timeIntervalSince(earlier) >= 1) }
        for site in sites.values { try await site.stop() }
        try await hub.stop()
    }
}
