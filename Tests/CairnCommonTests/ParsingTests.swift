import CairnCommon
import CairnTestSupport
import Foundation
import Testing

@Suite struct ParsingTests {
    @Test func `manifests round-trip exactly, unknown fields and integers included`() throws {
        // Keys in sorted order: Cairn's encoding is deterministic, so the bytes must come back the same.
        let text = #"{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"annotations":{"a":"1"},"name":"w"},"spec":{"count":3,"flag":true,"list":[1,"two",{"three":3}],"nothing":null,"ratio":0.25,"x-unknown":{"deep":[]}}}"#
        let parsed = try DocumentParser().parse(text)
        #expect(parsed.count == 1)
        let encoded = String(decoding: try CairnJSON.encode(parsed[0]), as: UTF8.self)
        #expect(encoded == text)
        let reparsed = try CairnJSON.decode(JSONValue.self, from: Data(encoded.utf8))
        #expect(reparsed == parsed[0])
        #expect(parsed[0]["spec"]?["count"] == .int(3))
        #expect(parsed[0]["spec"]?["ratio"] == .double(0.25))
        #expect(parsed[0]["spec"]?["nothing"] == .null)
    }

    @Test func `YAML and JSON of the same manifest parse alike`() throws {
        let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  port: \"8080\"\n  on: \"true\"\nspec:\n  replicas: 3\n"
        let json = #"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"},"data":{"port":"8080","on":"true"},"spec":{"replicas":3}}"#
        #expect(try DocumentParser().parse(yaml) == DocumentParser().parse(json))
    }

    @Test func `the whole Online Boutique file parses into its documents`() throws {
        let documents = try Corpus.onlineBoutique()
        #expect(documents.count > 20)
        #expect(documents.allSatisfy { $0["kind"]?.stringValue != nil })
    }

    @Test func `a YAML alias bomb is refused without expanding it`() async {
        await computing {
            var yaml = "a: &a [\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\"]\n"
            var previous = "a"
            for level in ["b", "c", "d", "e", "f", "g", "h", "i"] {
                yaml += "\(level): &\(level) [" + Array(repeating: "*\(previous)", count: 10).joined(separator: ",") + "]\n"
                previous = level
            }
            let error = #expect(throws: CairnError.self) { try DocumentParser().parse(yaml) }
            #expect(error?.code == .tooLarge)
            #expect(error?.message.contains("aliases") == true)
        }
    }

    @Test func `malformed YAML gets a clear error`() {
        let error = #expect(throws: CairnError.self) { try DocumentParser().parse("a: [unclosed\nb: {") }
        #expect(error?.message.contains("not valid YAML") == true)
    }

    @Test func `malformed JSON names the problem`() {
        let error = #expect(throws: CairnError.self) { try DocumentParser().parse(#"{"apiVersion": "v1", "kind": }"#) }
        #expect(error?.code == .invalid)
    }

    @Test func `deep nesting is refused by the parser`() {
        let deep = String(repeating: "[", count: 200) + String(repeating: "]", count: 200)
        #expect(throws: CairnError.self) { try DocumentParser().parse(deep) }
        let deepYAML = (0..<100).map { String(repeating: "  ", count: $0) + "k\($0):" }.joined(separator: "\n") + " x"
        #expect(throws: CairnError.self) { try DocumentParser().parse(deepYAML) }
    }

    @Test func `plain manifests become one work; ManifestWork documents stay works`() throws {
        let works = try WorkDocuments.works(from: try Corpus.onlineBoutique(), cluster: "c1", defaultName: "boutique")
        #expect(works.count == 1)
        #expect(works[0].metadata.namespace == "c1")
        let mixed: [JSONValue] = [["apiVersion": "cairn.io/v1", "kind": "ManifestWork", "metadata": ["name": "a"], "spec": ["workload": ["manifests": []]]], ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "b"]]]
        #expect(throws: CairnError.self) { try WorkDocuments.works(from: mixed, cluster: "c1", defaultName: nil) }
    }
}

@Suite struct ListDocumentTests {
    @Test func `List kinds stand for their items, as kubectl reads them`() throws {
        let text = try Corpus.text("kube-prometheus/manifests/prometheus-roleSpecificNamespaces.yaml")
        let documents = try DocumentParser().parse(text)
        #expect(documents.count > 1)
        #expect(documents.allSatisfy { $0["kind"]?.stringValue == "Role" })
    }
}
