import CairnCommon
import Foundation
import Testing

@Suite struct WorkTemplateTests {
    let template = WorkTemplate(clusterName: "c1", labels: ["region": "eu"], claims: ["platform": "kubernetes"], values: ["replicas-note": "three"])

    func spec(_ value: String) -> ManifestWork.Spec {
        ManifestWork.Spec(manifests: [["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "site"], "data": ["v": .string(value)]]])
    }

    @Test func `cluster name, labels, claims and override values are filled in`() throws {
        let rendered = try template.render(spec(#"{{ cluster.name }}/{{ cluster.labels["region"] }}/{{cluster.claims["platform"]}}/{{ values.replicas-note }}"#))
        #expect(rendered.workload.manifests[0]["data"]?["v"] == "c1/eu/kubernetes/three")
    }

    @Test(arguments: [#"{{ cluster.labels["zone"] }}"#, #"{{ cluster.claims["gpu"] }}"#, "{{ values.missing }}", "{{ cluster.secret }}", "{{ unclosed"])
    func `a missing key is an error naming the field, never an empty string`(text: String) {
        let error = #expect(throws: CairnError.self) { try template.render(spec(text)) }
        #expect(error?.field == "spec.manifestWorkTemplate.workload.manifests[0].data.v")
    }

    @Test func `counts and percentages resolve against the total`() throws {
        #expect(CountOrPercent.count(2).resolve(total: 10) == 2)
        #expect(CountOrPercent.percent(25).resolve(total: 10) == 3)
        #expect(CountOrPercent.percent(1).resolve(total: 3) == 1)
        #expect(CountOrPercent.percent(0).resolve(total: 3) == 0)
        #expect(try CairnJSON.decode(CountOrPercent.self, from: Data(#""50%""#.utf8)) == .percent(50))
    }
}
