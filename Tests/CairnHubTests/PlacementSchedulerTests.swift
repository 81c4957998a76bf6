import CairnCommon
import CairnHub
import Foundation
import Testing

@Suite struct PlacementSchedulerTests {
    let now = Date()

    func cluster(_ name: String, labels: [String: String] = [:], claims: [String: String] = [:], cpu: String? = nil, memory: String? = nil, available: String = Condition.true, since: TimeInterval = 0, taints: [Taint]? = nil) -> ManagedCluster {
        var cluster = ManagedCluster(metadata: ObjectMeta(name: name, labels: labels))
        cluster.status.enrolment = .accepted
        cluster.status.clusterClaims = claims.map { ClusterClaim(name: $0.key, value: $0.value) }
        if let cpu { cluster.status.allocatable["cpu"] = cpu }
        if let memory { cluster.status.allocatable["memory"] = memory }
        cluster.status.conditions = [Condition(type: ConditionType.available, status: available, reason: "test", lastTransitionTime: now.addingTimeInterval(-since))]
        cluster.spec.taints = taints
        return cluster
    }

    func placement(_ spec: Placement.Spec) -> Placement { Placement(metadata: ObjectMeta(name: "p"), spec: spec) }

    func chosen(_ spec: Placement.Spec, _ clusters: [ManagedCluster], previous: Set<String> = [], load: [String: Int] = [:]) -> [String] {
        PlacementScheduler.decide(placement(spec), clusters: clusters, previous: previous, load: load, now: now).decisions.map(\.clusterName)
    }

    func selecting(_ selector: Placement.ClusterSelector) -> Placement.Spec {
        Placement.Spec(predicates: [.init(requiredClusterSelector: selector)])
    }

    @Test func `label selector operators`() {
        let fleet = [cluster("a", labels: ["platform": "kubernetes", "tier": "edge"]), cluster("b", labels: ["platform": "openshift"]), cluster("c")]
        #expect(chosen(selecting(.init(labelSelector: LabelSelector(matchLabels: ["platform": "kubernetes"]))), fleet).sorted() == ["a"])
        #expect(chosen(selecting(.init(labelSelector: LabelSelector(matchExpressions: [.init(key: "platform", operator: .in, values: ["kubernetes", "openshift"])]))), fleet).sorted() == ["a", "b"])
        #expect(chosen(selecting(.init(labelSelector: LabelSelector(matchExpressions: [.init(key: "platform", operator: .notIn, values: ["openshift"])]))), fleet).sorted() == ["a", "c"])
        #expect(chosen(selecting(.init(labelSelector: LabelSelector(matchExpressions: [.init(key: "tier", operator: .exists)]))), fleet).sorted() == ["a"])
        #expect(chosen(selecting(.init(labelSelector: LabelSelector(matchExpressions: [.init(key: "platform", operator: .doesNotExist)]))), fleet).sorted() == ["c"])
    }

    @Test func `claim selector operators and ORed predicates`() {
        let fleet = [cluster("a", claims: ["region": "eu"]), cluster("b", claims: ["region": "us"]), cluster("c", labels: ["pinned": "yes"])]
        #expect(chosen(selecting(.init(claimSelector: ClaimSelector(matchExpressions: [.init(key: "region", operator: .in, values: ["eu"])]))), fleet) == ["a"])
        #expect(chosen(selecting(.init(claimSelector: ClaimSelector(matchExpressions: [.init(key: "region", operator: .notIn, values: ["eu"])]))), fleet).sorted() == ["b", "c"])
        #expect(chosen(selecting(.init(claimSelector: ClaimSelector(matchExpressions: [.init(key: "region", operator: .exists)]))), fleet).sorted() == ["a", "b"])
        #expect(chosen(selecting(.init(claimSelector: ClaimSelector(matchExpressions: [.init(key: "region", operator: .doesNotExist)]))), fleet) == ["c"])
        let either = Placement.Spec(predicates: [
            .init(requiredClusterSelector: .init(claimSelector: ClaimSelector(matchExpressions: [.init(key: "region", operator: .in, values: ["us"])]))),
            .init(requiredClusterSelector: .init(labelSelector: LabelSelector(matchLabels: ["pinned": "yes"]))),
        ])
        #expect(chosen(either, fleet).sorted() == ["b", "c"])
    }

    @Test func `numberOfClusters with each prioritizer`() {
        let fleet = [cluster("a", cpu: "2", memory: "4Gi"), cluster("b", cpu: "8", memory: "2Gi"), cluster("c", cpu: "500m", memory: "16Gi")]
        func best(_ prioritizer: String, previous: Set<String> = [], load: [String: Int] = [:]) -> [String] {
            chosen(Placement.Spec(numberOfClusters: 1, prioritizerPolicy: .init(mode: "Exact", configurations: [.init(builtIn: prioritizer, weight: 1)])), fleet, previous: previous, load: load)
        }
        #expect(best("ResourceAllocatableCPU") == ["b"])
        #expect(best("ResourceAllocatableMemory") == ["c"])
        #expect(best("Balance", load: ["a": 3, "b": 1, "c": 2]) == ["b"])
        #expect(best("Steady", previous: ["c"]) == ["c"])
        // Unset: every match.
        #expect(chosen(Placement.Spec(), fleet).count == 3)
        let outcome = PlacementScheduler.decide(placement(Placement.Spec(numberOfClusters: 5)), clusters: fleet, previous: [], load: [:], now: now)
        #expect(outcome.decisions.count == 3)
        #expect(outcome.condition.status == Condition.false)
        #expect(outcome.condition.message.contains("3 of 5"))
    }

    @Test func `taints exclude unless tolerated, for as long as the toleration says`() {
        let tainted = cluster("a", taints: [Taint(key: "maintenance", value: "yes", effect: Taints.noSelect, timeAdded: now.addingTimeInterval(-100))])
        let fleet = [tainted, cluster("b")]
        #expect(chosen(Placement.Spec(), fleet) == ["b"])
        #expect(chosen(Placement.Spec(tolerations: [Toleration(key: "maintenance", operator: "Equal", value: "yes")]), fleet).sorted() == ["a", "b"])
        #expect(chosen(Placement.Spec(tolerations: [Toleration(key: "maintenance", operator: "Exists")]), fleet).sorted() == ["a", "b"])
        #expect(chosen(Placement.Spec(tolerations: [Toleration(key: "maintenance", operator: "Equal", value: "yes", tolerationSeconds: 300)]), fleet).sorted() == ["a", "b"])
        #expect(chosen(Placement.Spec(tolerations: [Toleration(key: "maintenance", operator: "Equal", value: "yes", tolerationSeconds: 60)]), fleet) == ["b"])
        let newOnly = cluster("c", taints: [Taint(key: "draining", effect: Taints.noSelectIfNew)])
        #expect(chosen(Placement.Spec(), [newOnly]) == [])
        #expect(chosen(Placement.Spec(), [newOnly], previous: ["c"]) == ["c"])
    }

    @Test func `edge-first: a silent cluster keeps its decision unless the placement asks for eviction`() {
        let silent = cluster("edge", available: Condition.unknown, since: 3600)
        // No eviction policy: unreachable for an hour, still chosen (it was chosen before).
        #expect(chosen(Placement.Spec(), [silent], previous: ["edge"]) == ["edge"])
        // Explicit eviction after 10 minutes: it has been an hour, so the workload moves away.
        #expect(chosen(Placement.Spec(evictUnreachableAfter: "10m"), [silent], previous: ["edge"]) == [])
        // Within the eviction window it stays.
        #expect(chosen(Placement.Spec(evictUnreachableAfter: "2h"), [silent], previous: ["edge"]) == ["edge"])
        // An unavailable cluster (Available=False) is excluded unless tolerated.
        let broken = cluster("broken", available: Condition.false)
        #expect(chosen(Placement.Spec(), [broken]) == [])
        #expect(chosen(Placement.Spec(tolerations: [Toleration(key: Taints.unavailable, operator: "Exists")]), [broken]) == ["broken"])
    }

    @Test func `placements are validated naming the field`() {
        var bad = placement(Placement.Spec(prioritizerPolicy: .init(configurations: [.init(builtIn: "Random")])))
        #expect((try? bad.validate()) == nil)
        bad = placement(selecting(.init(labelSelector: LabelSelector(matchExpressions: [.init(key: "a", operator: .in, values: [])]))))
        #expect(throws: CairnError.self) { try bad.validate() }
        do {
            try bad.validate()
        } catch let error as CairnError {
            #expect(error.field == "spec.predicates[0].requiredClusterSelector.labelSelector.matchExpressions[0].values")
        } catch {}
    }
}
