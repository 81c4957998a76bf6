import CairnCommon
import CairnTestSupport
import Foundation
import Testing

@Suite struct BundleCodecTests {
    /// Built and encoded once for the suite: in a debug build parsing the corpus and encoding it take seconds, and
    /// each of these tests holds one of the test run's few threads while it works — six at once starved every other
    /// test of the run for ~15 s.
    static let corpus = Task { () throws -> (bundle: WorkBundle, encoded: BundleCodec.Encoded) in
        let bundle = try makeCorpusBundle(boutique: try Corpus.onlineBoutique(), kubePrometheus: try await Corpus.kubePrometheus())
        return try await computing { (bundle, try BundleCodec().encode(bundle)) }
    }

    func corpusBundle() async throws -> WorkBundle { try await Self.corpus.value.bundle }
    func corpusEncoded() async throws -> BundleCodec.Encoded { try await Self.corpus.value.encoded }

    static func makeCorpusBundle(boutique: [JSONValue], kubePrometheus: [(file: String, documents: [JSONValue])]) throws -> WorkBundle {
        var works = [ManifestWork(metadata: ObjectMeta(name: "boutique", namespace: "c1"), spec: .init(manifests: boutique))]
        for (index, file) in kubePrometheus.prefix(40).enumerated() {
            works.append(ManifestWork(metadata: ObjectMeta(name: "prom-\(index)", namespace: "c1"), spec: .init(manifests: file.documents)))
        }
        return WorkBundle(cluster: "c1", revision: 7, since: nil, works: works)
    }

    @Test func `a bundle of real manifests round-trips and compresses at least 5x`() async throws {
        try await computing {
            let codec = BundleCodec()
            let bundle = try await corpusBundle()
            let encoded = try await corpusEncoded()
            #expect(try codec.decode(encoded.bytes, expectedDigest: encoded.digest) == bundle)
            #expect(encoded.uncompressedSize >= 5 * encoded.bytes.count, "\(encoded.uncompressedSize) → \(encoded.bytes.count)")
        }
    }

    @Test func `encoding is deterministic`() async throws {
        try await computing {
            // Built anew, from a fresh parse of the files, against the suite's.
            let anew = try BundleCodec().encode(
                Self.makeCorpusBundle(boutique: try Corpus.parseOnlineBoutique(), kubePrometheus: try Corpus.parseKubePrometheus()))
            let suite = try await corpusEncoded().digest
            #expect(anew.digest == suite)
        }
    }

    @Test func `a truncated bundle is rejected`() async throws {
        try await computing {
            let encoded = try await corpusEncoded()
            let truncated = Array(encoded.bytes.prefix(encoded.bytes.count / 2))
            let error = #expect(throws: CairnError.self) { try BundleCodec().decode(truncated, expectedDigest: BundleCodec.digest(of: truncated)) }
            #expect(error?.code == .bundleRejected)
        }
    }

    @Test func `a corrupted byte fails the digest before anything is decompressed`() async throws {
        try await computing {
            let encoded = try await corpusEncoded()
            var corrupted = encoded.bytes
            corrupted[corrupted.count / 2] ^= 0x01
            let error = #expect(throws: CairnError.self) { try BundleCodec().decode(corrupted, expectedDigest: encoded.digest) }
            #expect(error?.message.contains("digest mismatch") == true)
        }
    }

    @Test func `a wrong digest is rejected`() async throws {
        try await computing {
            let encoded = try await corpusEncoded()
            let error = #expect(throws: CairnError.self) { try BundleCodec().decode(encoded.bytes, expectedDigest: "sha256:" + String(repeating: "0", count: 64)) }
            #expect(error?.message.contains("digest mismatch") == true)
        }
    }

    @Test func `an oversized bundle is rejected by its compressed size`() async throws {
        try await computing {
            var limits = BundleCodec.Limits()
            limits.maxCompressedBytes = 1024
            let encoded = try await corpusEncoded()
            let error = #expect(throws: CairnError.self) { try BundleCodec(limits: limits).decode(encoded.bytes, expectedDigest: encoded.digest) }
            #expect(error?.message.contains("limit is 1024") == true)
        }
    }

    @Test func `a zip bomb is stopped at the ratio cap`() async throws {
        try await computing {
            // One repeated byte compresses about 1000:1, whatever its length; the decoder stops at 200:1.
            let filler = String(repeating: "a", count: 4 * 1024 * 1024)
            let bomb = WorkBundle(cluster: "c1", revision: 1, since: nil, works: [ManifestWork(metadata: ObjectMeta(name: "bomb"), spec: .init(manifests: [["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "x"], "data": ["x": .string(filler)]]]))])
            let encoded = try BundleCodec().encode(bomb)
            #expect(encoded.bytes.count * 200 < encoded.uncompressedSize)
            let error = #expect(throws: CairnError.self) { try BundleCodec().decode(encoded.bytes, expectedDigest: encoded.digest) }
            #expect(error?.message.contains("decompresses past") == true)
        }
    }

    @Test func `valid zlib that is not a bundle is rejected with the field`() throws {
        let notABundle = try BundleCodec().encode(WorkBundle(cluster: "c1", revision: 1, since: nil, works: []))
        // Same bytes, decoded fine; now a body that is JSON but lacks fields:
        #expect(try BundleCodec().decode(notABundle.bytes, expectedDigest: notABundle.digest).works.isEmpty)
        let error = #expect(throws: CairnError.self) { try BundleCodec().decode([0x78, 0x9c, 0x01, 0x02], expectedDigest: BundleCodec.digest(of: [0x78, 0x9c, 0x01, 0x02])) }
        #expect(error?.code == .bundleRejected)
    }
}
