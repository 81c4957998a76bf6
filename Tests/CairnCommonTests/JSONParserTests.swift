import CairnCommon
import CairnTestSupport
import Foundation
import Testing

/// The parser must give exactly the tree Foundation's JSONDecoder gives (hashes and state digests depend on it).
@Suite struct JSONParserTests {
    /// The tree as JSONValue's Codable conformance reads it through Foundation's JSONDecoder.
    func foundation(_ text: String) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
    }

    @Test func `every corpus manifest parses to the tree Foundation gives`() throws {
        var documents = try Corpus.onlineBoutique()
        for file in try Corpus.kubePrometheus() { documents += file.documents }
        #expect(documents.count > 100)
        for document in documents {
            let text = try CairnJSON.string(document)
            let parsed = try JSONParser.parse(Data(text.utf8))
            #expect(parsed == (try foundation(text)))
            #expect(parsed == document)
        }
    }

    @Test(arguments: [
        "1.0", "1e2", "1.5", "-0", "-0.0", "9223372036854775807", "-9223372036854775808", "9223372036854775808", "0.1e1", "10E-1",
        "1.0000000000000002", "1e-400", "123456789012345678901234567890", "\"a\\u00e9\\ud83d\\ude00 \\\" \\\\ \\/ \\b\\f\\n\\r\\t\"",
        "\"é ü 日本\"", "true", "false", "null", "[]", "{}", "[1, [2, [3, {}]], {\"a\": [null]}]", " { \"b\" : 1 , \"a\" : \"x\" } ",
    ])
    func `values parse as Foundation reads them`(text: String) throws {
        #expect(try JSONParser.parse(Data(text.utf8)) == (try foundation(text)), "\(text)")
    }

    @Test(arguments: [
        "", " ", "01", "-", "1.", ".5", "1e", "+1", "[1,]", "[1 2]", "{\"a\" 1}", "{\"a\":1,}", "{a:1}", "\"abc", "\"\\x\"", "\"\\ud83d\"",
        "\"\\ude00\"", "\"\u{01}\"", "tru", "nul", "1E400", "-1e400", "[1] 2", "NaN", "Infinity",
    ])
    func `malformed text is refused`(text: String) {
        #expect(throws: JSONParser.Failure.self, "\(text)") { try JSONParser.parse(Data(text.utf8)) }
        // Foundation forgives a trailing comma; RFC 8259 (and the parser) does not.
        if !text.hasSuffix(",]"), !text.hasSuffix(",}") {
            #expect(throws: (any Error).self, "\(text)") { try foundation(text) }
        }
    }

    @Test func `invalid UTF-8 and too deep nesting are refused`() {
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(Data([0x22, 0xC3, 0x28, 0x22])) }
        let deep = String(repeating: "[", count: JSONParser.maxDepth + 1) + String(repeating: "]", count: JSONParser.maxDepth + 1)
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(Data(deep.utf8)) }
        let fine = String(repeating: "[", count: JSONParser.maxDepth) + String(repeating: "]", count: JSONParser.maxDepth)
        #expect(throws: Never.self) { try JSONParser.parse(Data(fine.utf8)) }
    }

    @Test func `a duplicate key keeps its first value, as Foundation does`() throws {
        let text = #"{"a": 1, "a": 2}"#
        #expect(try JSONParser.parse(Data(text.utf8)) == ["a": 1])
        #expect(try JSONDecoder().decode([String: Int].self, from: Data(text.utf8)) == ["a": 1])
    }

    @Test func `decoding from the tree names the bad field as before`() throws {
        let cases: [(String, String)] = [
            (#"{"apiVersion": "v1", "kind": "ManifestWork", "metadata": {"name": 5}, "spec": {"workload": {"manifests": []}}}"#, "metadata.name must be a string"),
            (#"{"apiVersion": "v1", "kind": "ManifestWork", "metadata": {"name": "w"}}"#, "spec is required"),
            (#"{"apiVersion": "v1", "kind": "ManifestWork", "metadata": {"name": "w", "generation": "x"}, "spec": {"workload": {"manifests": []}}}"#, "metadata.generation must be an integer"),
            (#"{"apiVersion": "v1", "kind": "ManifestWork", "metadata": {"name": "w", "generation": 1.5}, "spec": {"workload": {"manifests": []}}}"#, "metadata.generation"),
            (#"{"apiVersion": "v1", "kind": "ManifestWork", "metadata": {"name": null}, "spec": {"workload": {"manifests": []}}}"#, "metadata.name must be a string, not null"),
            (#"{"apiVersion": "v1", "kind": "ManifestWork", "metadata": {"name": "w"}, "spec": {"workload": {"manifests": 3}}}"#, "spec.workload.manifests must be a list"),
            (#"{"apiVersion": "v1", "kind": "ManifestWork", "metadata": {"name": "w", "creationTimestamp": "yesterday"}, "spec": {"workload": {"manifests": []}}}"#, "metadata.creationTimestamp"),
            (#"{"apiVersion": "v1", "kind": "ManifestWork", "metadata": {"name": "w"}, "#, "is not valid JSON"),
        ]
        for (text, message) in cases {
            do {
                _ = try CairnJSON.decode(ManifestWork.self, from: Data(text.utf8), what: "ManifestWork")
                Issue.record("\(text) was accepted")
            } catch let error as CairnError {
                #expect(error.message.contains(message), "\(error.message)")
            }
        }
    }

    @Test func `a work and its dates round-trip through the tree`() throws {
        var work = ManifestWork(metadata: ObjectMeta(name: "w", namespace: "c1"), spec: .init(manifests: try Corpus.onlineBoutique()))
        work.metadata.generation = 3
        work.metadata.creationTimestamp = Date(timeIntervalSince1970: 1_700_000_000)
        work.status = .init(conditions: [Condition(type: "Applied", status: "True", reason: "Done", lastTransitionTime: Date(timeIntervalSince1970: 1_700_000_100), observedGeneration: 3)])
        let decoded = try CairnJSON.decode(ManifestWork.self, from: try CairnJSON.encode(work))
        #expect(decoded == work)
    }
}
