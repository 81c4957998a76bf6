import CairnCommon
import CairnTestSupport
import Foundation
import Testing

@Suite struct ValidationTests {
    func work(_ manifests: [JSONValue], name: String = "shop") -> ManifestWork {
        ManifestWork(metadata: ObjectMeta(name: name), spec: .init(manifests: manifests))
    }

    func rejection(_ work: ManifestWork, cluster: String? = "c1", limits: WorkLimits = WorkLimits()) -> CairnError? {
        do {
            try work.validate(cluster: cluster, limits: limits)
            return nil
        } catch let error as CairnError {
            return error
        } catch {
            return CairnError(.internal, "\(error)")
        }
    }

    @Test func `real manifests from Online Boutique and kube-prometheus are accepted`() async throws {
        try await computing {
            try work(try Corpus.onlineBoutique()).validate(cluster: "c1")
            for (file, documents) in try await Corpus.kubePrometheus() {
                #expect(throws: Never.self, "\(file)") { try work(documents).validate(cluster: "c1") }
            }
        }
    }

    @Test(arguments: [
        ("apiVersion", ["kind": "ConfigMap", "metadata": ["name": "a"]] as JSONValue, "spec.workload.manifests[0].apiVersion"),
        ("kind", ["apiVersion": "v1", "metadata": ["name": "a"]], "spec.workload.manifests[0].kind"),
        ("metadata", ["apiVersion": "v1", "kind": "ConfigMap"], "spec.workload.manifests[0].metadata"),
        ("metadata.name", ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["labels": ["a": "b"]]], "spec.workload.manifests[0].metadata.name"),
        ("path separator", ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "../etc/passwd"]], "spec.workload.manifests[0].metadata.name"),
        ("control character", ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "a\u{7}b"]], "spec.workload.manifests[0].metadata.name"),
        ("namespace", ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "a", "namespace": "Bad_NS"]], "spec.workload.manifests[0].metadata.namespace"),
        ("label key", ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "a", "labels": ["-bad": "x"]]], "spec.workload.manifests[0].metadata.labels.-bad"),
        ("label value", ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "a", "labels": ["ok": "not ok"]]], "spec.workload.manifests[0].metadata.labels.ok"),
        ("not an object", "just a string", "spec.workload.manifests[0]"),
    ] as [(String, JSONValue, String)])
    func `a bad manifest is rejected naming its field`(what: String, manifest: JSONValue, field: String) {
        let error = rejection(work([manifest]))
        #expect(error?.code == .invalid, "\(what)")
        #expect(error?.field == field, "\(what): \(error?.message ?? "accepted")")
    }

    @Test func `a duplicate manifest is rejected`() {
        let map: JSONValue = ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "a", "namespace": "x"]]
        let error = rejection(work([map, map]))
        #expect(error?.field == "spec.workload.manifests[1]")
        #expect(error?.message.contains("duplicates manifests[0]") == true)
    }

    @Test func `same name in another namespace or kind is not a duplicate`() throws {
        try work([
            ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "a", "namespace": "x"]],
            ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "a", "namespace": "y"]],
            ["apiVersion": "v1", "kind": "Secret", "metadata": ["name": "a", "namespace": "x"]],
        ]).validate(cluster: "c1")
    }

    @Test(arguments: ["", "UPPER", "has_underscore", "-leading", "trailing-", String(repeating: "a", count: 64), "a/b", "a.b"])
    func `work names must be DNS-1123 labels`(name: String) {
        #expect(rejection(work([], name: name))?.field == "metadata.name")
    }

    @Test func `a work larger than the cap is refused`() {
        var limits = WorkLimits()
        limits.maxManifestBytes = 10_000
        let big: JSONValue = ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "big"], "data": ["x": .string(String(repeating: "x", count: 20_000))]]
        let error = rejection(work([big]), limits: limits)
        #expect(error?.code == .tooLarge)
        #expect(error?.field == "spec.workload.manifests")
    }

    @Test func `deeply nested manifests are refused`() {
        var nested: JSONValue = "leaf"
        for _ in 0..<100 { nested = ["x": nested] }
        let error = rejection(work([["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "a"], "data": nested]]))
        #expect(error?.message.contains("nested deeper") == true)
    }

    @Test func `a work whose namespace names another cluster is refused`() {
        var shop = work([])
        shop.metadata.namespace = "c2"
        #expect(rejection(shop, cluster: "c1")?.field == "metadata.namespace")
    }

    @Test func `an OCM ManifestWork is accepted as is`() throws {
        let yaml = """
            apiVersion: work.open-cluster-management.io/v1
            kind: ManifestWork
            metadata:
              name: hello
              namespace: c1
            spec:
              deleteOption:
                propagationPolicy: Orphan
              manifestConfigs:
              - resourceIdentifier: {group: apps, resource: deployments, name: web, namespace: default}
                updateStrategy: {type: ServerSideApply}
                feedbackRules:
                - type: JSONPaths
                  jsonPaths: [{name: ready, path: .status.readyReplicas}]
              workload:
                manifests:
                - apiVersion: apps/v1
                  kind: Deployment
                  metadata: {name: web, namespace: default}
                  spec: {replicas: 2}
            """
        let works = try WorkDocuments.works(from: try DocumentParser().parse(yaml), cluster: "c1", defaultName: nil)
        try works[0].validate(cluster: "c1")
        #expect(works[0].spec.propagationPolicy == .orphan)
        #expect(works[0].spec.config(for: ManifestKey(apiVersion: "apps/v1", kind: "Deployment", namespace: "default", name: "web"))?.feedbackRules?.first?.jsonPaths?.first?.path == ".status.readyReplicas")
    }

    func workWithIgnoreFields(_ ignore: String) throws -> ManifestWork {
        let yaml = """
            apiVersion: work.open-cluster-management.io/v1
            kind: ManifestWork
            metadata: {name: scaled, namespace: c1}
            spec:
              manifestConfigs:
              - resourceIdentifier: {group: apps, resource: deployments, name: web, namespace: default}
                updateStrategy:
                  type: ServerSideApply
                  serverSideApply:
                    ignoreFields: [\(ignore)]
              workload:
                manifests:
                - {apiVersion: apps/v1, kind: Deployment, metadata: {name: web, namespace: default}, spec: {replicas: 2}}
            """
        return try WorkDocuments.works(from: try DocumentParser().parse(yaml), cluster: "c1", defaultName: nil)[0]
    }

    @Test func `ignoreFields in OCM's shape is accepted and read as paths`() throws {
        let work = try workWithIgnoreFields("{condition: OnSpokePresent, jsonPaths: [.spec.replicas, .metadata.annotations.owner]}")
        try work.validate(cluster: "c1")
        let strategy = work.spec.config(for: ManifestKey(apiVersion: "apps/v1", kind: "Deployment", namespace: "default", name: "web"))?.updateStrategy
        #expect(strategy?.ignoredPaths == [["spec", "replicas"], ["metadata", "annotations", "owner"]])
        let live: JSONValue = ["spec": ["replicas": 7], "metadata": ["annotations": ["owner": "hpa"]]]
        let desired: JSONValue = ["spec": ["replicas": 2, "paused": false], "metadata": ["name": "web"]]
        #expect(strategy?.respectingIgnoredFields(desired, live: live, keep: true) == ["spec": ["replicas": 7, "paused": false], "metadata": ["name": "web", "annotations": ["owner": "hpa"]]])
        #expect(strategy?.respectingIgnoredFields(desired, live: live, keep: false) == ["spec": ["paused": false], "metadata": ["name": "web"]])
        #expect(strategy?.respectingIgnoredFields(desired, live: nil, keep: false) == desired)
    }

    @Test(arguments: [
        ("{condition: OnSpokeChange, jsonPaths: [.spec.replicas]}", ".condition"),
        ("{jsonPaths: []}", ".jsonPaths"),
        ("{jsonPaths: [spec.replicas]}", ".jsonPaths[0]"),
        ("{jsonPaths: [.metadata.name]}", ".jsonPaths[0]"),
        ("{jsonPaths: [.spec.replicas, .kind]}", ".jsonPaths[1]"),
    ])
    func `bad ignoreFields name the field`(ignore: String, field: String) throws {
        let work = try workWithIgnoreFields(ignore)
        #expect(rejection(work, cluster: "c1")?.field == "spec.manifestConfigs[0].updateStrategy.serverSideApply.ignoreFields[0]" + field)
    }

    @Test func `label syntax follows Kubernetes`() throws {
        try Names.validateLabels(["example.com/tier": "edge", "region": "eu-west_1.a", "empty": ""], field: "labels")
        #expect(throws: CairnError.self) { try Names.validateLabels(["a/b/c": "x"], field: "labels") }
        #expect(throws: CairnError.self) { try Names.validateLabels([String(repeating: "k", count: 64): "x"], field: "labels") }
        #expect(throws: CairnError.self) { try Names.validateLabels(["k": String(repeating: "v", count: 64)], field: "labels") }
    }
}
