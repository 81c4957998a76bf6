import CairnCommon
import CairnTestSupport
import CompressNIO
import Foundation
import NIOCore
import Testing

/// Seeded mutation fuzzing of the two decoders that read untrusted bytes: the bundle codec (compressed bytes
/// and the JSON inside them) and the manifest parser (YAML and JSON). Each mutated input must be read or
/// refused with a CairnError — never crash, hang, or fail any other way. Seeds: the committed FuzzCorpus and
/// real manifests from ../shared/corpus. CAIRN_FUZZ_ITERATIONS sets the count (default keeps CI quick);
/// CAIRN_FUZZ_SEED replays a run.
@Suite struct FuzzTests {
    /// SplitMix64: small, fast, and the same sequence for the same seed everywhere.
    struct Generator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static let iterations = ProcessInfo.processInfo.environment["CAIRN_FUZZ_ITERATIONS"].flatMap(Int.init) ?? 1_500
    static let seed = ProcessInfo.processInfo.environment["CAIRN_FUZZ_SEED"].flatMap(UInt64.init) ?? 20_261_121

    /// Bytes worth splicing in: YAML and JSON syntax, anchors and aliases, tags, odd Unicode and control bytes.
    static let tokens: [[UInt8]] = [
        "{", "}", "[", "]", ":", ",", "\"", "'", "&a ", "*a", "<<: ", "!!binary ", "---\n", "...\n", "- ", "\n  ", "\t", "\\u0000",
        "\u{0}", "\u{1b}", "\u{feff}", "\u{10ffff}", "1e309", "-0", "99999999999999999999", "null", "true", "~", "?", "|\n", ">-\n", "%YAML 1.2\n",
    ].map { Array($0.utf8) }

    static func mutate(_ input: [UInt8], _ random: inout Generator) -> [UInt8] {
        var bytes = input
        for _ in 0..<Int.random(in: 1...8, using: &random) {
            switch Int.random(in: 0..<7, using: &random) {
            case 0 where !bytes.isEmpty:  // flip a bit
                let index = Int.random(in: 0..<bytes.count, using: &random)
                bytes[index] ^= UInt8(1) << UInt8.random(in: 0..<8, using: &random)
            case 1 where !bytes.isEmpty:  // overwrite a byte
                bytes[Int.random(in: 0..<bytes.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
            case 2 where !bytes.isEmpty:  // truncate
                bytes.removeLast(Int.random(in: 0..<bytes.count, using: &random))
            case 3 where bytes.count > 1:  // delete a range
                let start = Int.random(in: 0..<bytes.count, using: &random)
                bytes.removeSubrange(start..<min(bytes.count, start + Int.random(in: 1...16, using: &random)))
            case 4:  // splice in a token
                bytes.insert(contentsOf: tokens[Int.random(in: 0..<tokens.count, using: &random)], at: Int.random(in: 0...bytes.count, using: &random))
            case 5 where !bytes.isEmpty:  // duplicate a range
                let start = Int.random(in: 0..<bytes.count, using: &random)
                let range = start..<min(bytes.count, start + Int.random(in: 1...64, using: &random))
                bytes.insert(contentsOf: bytes[range], at: Int.random(in: 0...bytes.count, using: &random))
            default:  // insert random bytes
                bytes.insert(contentsOf: (0..<Int.random(in: 1...8, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }, at: Int.random(in: 0...bytes.count, using: &random))
            }
        }
        return bytes
    }

    static func corpusSeeds() throws -> [[UInt8]] {
        let directory = try #require(Bundle.module.resourceURL?.appendingPathComponent("FuzzCorpus"))
        var seeds = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted().map {
            Array(try Data(contentsOf: directory.appendingPathComponent($0)))
        }
        seeds.append(Array(try Corpus.text("online-boutique/kubernetes-manifests.yaml").utf8.prefix(6_000)))
        seeds.append(Array(try Corpus.text("kube-prometheus/manifests/grafana-deployment.yaml").utf8))
        return seeds
    }

    /// What a refusal may look like: a CairnError, nothing else.
    func expectReadOrRefused(_ what: String, _ input: [UInt8], _ body: () throws -> Void) {
        do {
            try body()
        } catch is CairnError {
        } catch {
            Issue.record("\(what) failed with \(type(of: error)) rather than a CairnError: \(error); input (base64): \(Data(input).base64EncodedString())")
        }
    }

    @Test func `the manifest parser reads or refuses every mutated input`() async throws {
        try await computing {
            var random = Generator(state: Self.seed)
            let seeds = try Self.corpusSeeds()
            var read = 0
            for index in 0..<Self.iterations {
                let input = Self.mutate(seeds[index % seeds.count], &random)
                expectReadOrRefused("parse", input) {
                    let documents = try DocumentParser().parse(String(decoding: input, as: UTF8.self))
                    // Whatever parses must also pass or fail validation cleanly, and survive encoding.
                    for (offset, document) in documents.enumerated() {
                        _ = try? ManifestWork.validateManifest(document, field: "manifests[\(offset)]")
                        _ = try CairnJSON.encode(document)
                    }
                    read += 1
                }
            }
            // Some mutations must still parse, or the fuzzing only ever tested the first error path.
            #expect(read > Self.iterations / 20)
        }
    }

    @Test func `the bundle decoder reads or refuses every mutated bundle`() async throws {
        try await computing {
            var random = Generator(state: Self.seed &+ 1)
            let codec = BundleCodec()
            let manifests = try Corpus.onlineBoutique().prefix(6)
            let work = ManifestWork(metadata: ObjectMeta(name: "shop"), spec: .init(manifests: Array(manifests)))
            let encoded = try codec.encode(WorkBundle(cluster: "c1", revision: 7, since: 3, works: [work], tombstones: [Tombstone(name: "old", revision: 5)]))
            let json = Array(try CairnJSON.encode(WorkBundle(cluster: "c1", revision: 7, since: nil, works: [work])))
            var decoded = 0
            for index in 0..<Self.iterations {
                if index % 2 == 0 {
                    // The compressed bytes, re-digested so the inflater and decoder behind the digest check are reached.
                    let input = Self.mutate(encoded.bytes, &random)
                    expectReadOrRefused("decode", input) { _ = try codec.decode(input, expectedDigest: BundleCodec.digest(of: input)) }
                } else {
                    // The JSON inside, mutated and compressed again: the decoder and validation get odd but whole input.
                    let input = Self.mutate(json, &random)
                    var buffer = ByteBuffer(bytes: input)
                    let compressed = Array(try buffer.compress(with: .zlib()).readableBytesView)
                    expectReadOrRefused("decode", input) {
                        let bundle = try codec.decode(compressed, expectedDigest: BundleCodec.digest(of: compressed))
                        for work in bundle.works { _ = try? work.validate(cluster: "c1") }
                        decoded += 1
                    }
                }
            }
            #expect(decoded > 0)
        }
    }
}

/// What fuzzing found, kept as plain tests.
@Suite struct FuzzFindingsTests {
    @Test(arguments: ["a: .inf", "a: -.inf", "a: .nan", "1e309", "obj: {neg: -.INF}"])
    func `numbers JSON cannot hold are refused, not stored`(yaml: String) {
        let error = #expect(throws: CairnError.self) { try DocumentParser().parse(yaml) }
        #expect(error?.message.contains("JSON cannot hold") == true)
    }

    @Test func `a JSON number too large for a double is refused as input`() {
        #expect(throws: CairnError.self) { try DocumentParser().parse(#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"},"data":{"x":1e309}}"#) }
    }
}
