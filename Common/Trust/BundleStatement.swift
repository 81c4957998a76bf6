import Crypto
import Foundation

/// What the hub signs for each bundle: the cluster, the revision, the bundle's digest and the digest of the
/// cluster's whole desired state at that revision. The state digest lets the agent check that applying a delta
/// produced exactly the hub's state, and check its cache again at every start.
public struct BundleStatement: Codable, Sendable, Equatable {
    public var cluster: String
    public var revision: Int64
    public var bundleDigest: String
    public var stateDigest: String

    public init(cluster: String, revision: Int64, bundleDigest: String, stateDigest: String) {
        self.cluster = cluster
        self.revision = revision
        self.bundleDigest = bundleDigest
        self.stateDigest = stateDigest
    }

    public var signedBytes: Data { Data("cairn-bundle/v1\n\(cluster)\n\(revision)\n\(bundleDigest)\n\(stateDigest)\n".utf8) }

    public func verify(signature: String, publicKey: String) -> Bool {
        guard let signatureBytes = Data(base64Encoded: signature), let keyBytes = Data(base64Encoded: publicKey),
            let key = try? Curve25519.Signing.PublicKey(rawRepresentation: keyBytes)
        else { return false }
        return key.isValidSignature(signatureBytes, for: signedBytes)
    }

    /// The hash of one work as it travels in bundles (no status), in Cairn's deterministic JSON.
    public static func workHash(_ work: ManifestWork) throws -> String {
        var bare = work
        bare.status = nil
        return Hashing.sha256(try CairnJSON.encode(bare))
    }

    /// The digest of a desired state from each work's name and hash.
    public static func stateDigest(_ hashes: [(name: String, hash: String)]) -> String {
        var hasher = SHA256()
        for entry in hashes.sorted(by: { $0.name < $1.name }) { hasher.update(data: Data("\(entry.name)\n\(entry.hash)\n".utf8)) }
        return "sha256:" + Hashing.hex(hasher.finalize())
    }
}
