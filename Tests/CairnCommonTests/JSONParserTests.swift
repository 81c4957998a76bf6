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

    @Test func `every corpus manifest parses to the tree Foundation gives`() async throws {
        try await computing {
            var documents = try Corpus.onlineBoutique()
            for file in try await Corpus.kubePrometheus() { documents += file.documents }
            #expect(documents.count > 100)
            for document in documents {
                let text = try CairnJSON.string(document)
                let parsed = try JSONParser.parse(Data(text.utf8))
                #expect(parsed == (try foundation(text)))
                #expect(parsed == document)
            }
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

    /// Strings of ASCII alone skip validation (`JSONParser.Reader.text`): a byte past ASCII anywhere — after ASCII, in
    /// a key, after an escape — must still be validated.
    @Test(arguments: [
        [0x22, 0x61, 0x62, 0xFF, 0x22], [0x22, 0x80, 0x22], [0x22, 0x61, 0xC0, 0xAF, 0x22], [0x22, 0x61, 0xED, 0xA0, 0x80, 0x22],
        [0x7B, 0x22, 0x6B, 0xFE, 0x22, 0x3A, 0x31, 0x7D], [0x22, 0x5C, 0x6E, 0x61, 0xC3, 0x22], [0x5B, 0x22, 0x61, 0x22, 0x2C, 0x22, 0xF8, 0x22, 0x5D],
    ] as [[UInt8]])
    func `a string with bytes that are not UTF-8 is refused wherever they are`(bytes: [UInt8]) {
        #expect(throws: JSONParser.Failure.self, "\(bytes)") { try JSONParser.parse(Data(bytes)) }
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

/// The writer must give exactly the bytes Foundation's JSONEncoder gives: work hashes and state digests, stored
/// at the hub and recomputed by agents, depend on them.
@Suite struct JSONTextTests {
    func foundation<T: Encodable>(_ value: T) throws -> Data { try CairnJSON.encoder().encode(value) }

    @Test func `corpus works, bundles and statuses are written byte for byte as JSONEncoder writes them`() async throws {
        try await computing {
            var works = [ManifestWork(metadata: ObjectMeta(name: "boutique", namespace: "c1"), spec: .init(manifests: try Corpus.onlineBoutique()))]
            for (index, file) in try await Corpus.kubePrometheus().enumerated() {
                var work = ManifestWork(metadata: ObjectMeta(name: "prom-\(index)", namespace: "c1"), spec: .init(manifests: file.documents))
                work.metadata.generation = Int64(index)
                work.metadata.creationTimestamp = Date(timeIntervalSince1970: 1_700_000_000 + Double(index))
                work.metadata.labels = ["app": "prom", "Index": "\(index)", "a10": "x", "a9": "y"]
                work.status = .init(conditions: [
                    Condition(type: "Applied", status: "True", reason: "Done", message: "line\nnext \"quoted\" \\ / é 😀 \u{1}", lastTransitionTime: Date(timeIntervalSince1970: 1_700_000_100), observedGeneration: 3)
                ])
                works.append(work)
            }
            for work in works { #expect(try CairnJSON.encode(work) == (try foundation(work))) }
            let bundle = WorkBundle(cluster: "c1", revision: 9, since: 4, works: works, tombstones: [Tombstone(name: "gone", revision: 3)], deletionsReleasedThrough: 2)
            #expect(try CairnJSON.encode(bundle) == (try foundation(bundle)))
            let report = StatusReport(works: works.prefix(5).map { WorkStatusUpdate(name: $0.name, observedGeneration: $0.generation, status: $0.status) })
            #expect(try CairnJSON.encode(report) == (try foundation(report)))
        }
    }

    @Test func `tricky keys, strings and numbers are written as JSONEncoder writes them`() throws {
        let keys = ["b", "B", "a10", "a9", "_x", "Z", "a", "é", "10", "9", "A", "aa", "a-b", "a_b", "a.b", "ab", "Ab", "x1y", "x01y", "", "ß", "ss", "~", "a b", "日本", "Ω"]
        var object = [String: JSONValue]()
        for (index, key) in keys.enumerated() { object[key] = .int(Int64(index)) }
        let numbers: [JSONValue] = [0.1, 1.5, 1e21, 1e-7, 123456789.123, 1e300, .leastNonzeroMagnitude, 1.7976931348623157e308, 2.5e15 + 0.5, 1e16, 0.000001, -0.5]
            .map { .double($0) } + [.int(.max), .int(.min), .int(0), .double(-0.0), .double(100)]
        let strings: [JSONValue] = ["a/b\"c\\d\u{1}\u{1f}\u{7f}\n\t\r\u{8}\u{c}é😀\u{2028}", "", "plain"].map { .string($0) }
        let value: JSONValue = ["keys": .object(object), "numbers": .array(numbers), "strings": .array(strings), "nested": [[[:]], [], .null, true, false]]
        #expect(String(decoding: try CairnJSON.encode(value), as: UTF8.self) == String(decoding: try foundation(value), as: UTF8.self))
    }

    @Test func `numbers JSON cannot hold are refused as JSONEncoder refuses them`() {
        for number in [Double.nan, .infinity, -.infinity] {
            #expect(throws: EncodingError.self) { try CairnJSON.encode(JSONValue.array([.double(number)])) }
            #expect(throws: EncodingError.self) { try foundation(JSONValue.array([.double(number)])) }
        }
    }
}
