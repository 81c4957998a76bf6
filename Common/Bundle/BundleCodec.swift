import CompressNIO
import Foundation
import NIOCore

/// Serialises bundles as deterministic JSON, compressed with zlib and addressed by the SHA-256 of the compressed bytes.
public struct BundleCodec: Sendable {
    public struct Limits: Sendable {
        public var maxCompressedBytes: Int = 64 * 1024 * 1024
        public var maxDecompressedBytes: Int = 256 * 1024 * 1024
        /// Real manifests compress 5–30×; a ratio past this is a bomb, not a bundle.
        public var maxRatio: Int = 200
        public init() {}
    }

    public struct Encoded: Sendable {
        public var bytes: [UInt8]
        public var digest: String
        public var uncompressedSize: Int
    }

    public var limits: Limits
    public init(limits: Limits = Limits()) { self.limits = limits }

    public func encode(_ bundle: WorkBundle) throws -> Encoded {
        let json = try CairnJSON.encode(bundle)
        var input = ByteBuffer(bytes: json)
        let compressed = try input.compress(with: .zlib())
        let bytes = Array(compressed.readableBytesView)
        return Encoded(bytes: bytes, digest: Self.digest(of: bytes), uncompressedSize: json.count)
    }

    /// Verifies size and digest before decompressing, and bounds decompression by size and ratio.
    public func decode(_ bytes: [UInt8], expectedDigest: String) throws -> WorkBundle {
        guard !bytes.isEmpty else { throw CairnError(.bundleRejected, "bundle is empty") }
        guard bytes.count <= limits.maxCompressedBytes else {
            throw CairnError(.bundleRejected, "bundle is \(bytes.count) bytes compressed; the limit is \(limits.maxCompressedBytes)")
        }
        let actual = Self.digest(of: bytes)
        guard actual == expectedDigest else {
            throw CairnError(.bundleRejected, "bundle digest mismatch: expected \(expectedDigest), got \(actual)")
        }
        let cap = min(limits.maxDecompressedBytes, bytes.count.multipliedReportingOverflow(by: limits.maxRatio).partialValue)
        var input = ByteBuffer(bytes: bytes)
        let output: ByteBuffer
        do {
            output = try input.decompress(with: .zlib(), maxSize: cap)
        } catch let error as CompressNIOError where error == .bufferOverflow {
            throw CairnError(
                .bundleRejected,
                "bundle decompresses past \(cap) bytes (limit \(limits.maxDecompressedBytes) bytes, ratio \(limits.maxRatio)×)")
        } catch {
            throw CairnError(.bundleRejected, "bundle is not valid zlib data: \(error)")
        }
        do {
            return try CairnJSON.decode(WorkBundle.self, from: Data(output.readableBytesView), what: "bundle")
        } catch let error as CairnError {
            throw CairnError(.bundleRejected, error.message, field: error.field)
        }
    }

    public static func digest(of bytes: some Sequence<UInt8>) -> String {
        "sha256:" + Hashing.sha256(Array(bytes))
    }
}
