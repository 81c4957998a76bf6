import CairnCommon

/// Everything a bundle must pass before it may touch the cache: size and digest (in the codec), the hub's
/// signature over this cluster, revision, digest and resulting state, the cluster it names, a delta's base, and
/// every work's validity. The state digest itself is checked when the bundle is committed.
public struct BundleVerifier: Sendable {
    let codec: BundleCodec
    let identity: AgentIdentity

    public init(codec: BundleCodec = BundleCodec(), identity: AgentIdentity) {
        self.codec = codec
        self.identity = identity
    }

    public func verify(
        bytes: [UInt8], digest: String, stateDigest: String, signature: String, since: Int64?
    ) throws -> (WorkBundle, BundleStatement) {
        let bundle = try codec.decode(bytes, expectedDigest: digest)
        // Signed for this cluster and this revision: a bundle for another cluster does not verify here.
        let statement = BundleStatement(cluster: identity.clusterName, revision: bundle.revision, bundleDigest: digest, stateDigest: stateDigest)
        guard let signingKey = identity.signingKey, statement.verify(signature: signature, publicKey: signingKey) else {
            throw CairnError(.bundleRejected, "bundle \(bundle.revision) is not signed for cluster \(identity.clusterName) by the hub this agent enrolled with")
        }
        guard bundle.cluster == identity.clusterName else {
            throw CairnError(.bundleRejected, "bundle is for cluster \(bundle.cluster), not \(identity.clusterName)")
        }
        if let from = bundle.since, from != since {
            throw CairnError(.bundleRejected, "delta bundle starts at revision \(from) but the cache holds \(since.map(String.init) ?? "none")")
        }
        // An older delta is a replay: never applied. An older full bundle is a hub that went back in time
        // (restored from a backup): taken, but its deletions are held by the brake (see `wentBack`).
        if let since, bundle.revision < since, !bundle.isFull {
            throw CairnError(.bundleRejected, "delta bundle revision \(bundle.revision) is older than the cached \(since)")
        }
        for work in bundle.works { try work.validate(cluster: identity.clusterName) }
        return (bundle, statement)
    }

    /// A full bundle older than what the cache holds: the hub went back in time.
    public static func wentBack(_ bundle: WorkBundle, cached: Int64?) -> Bool {
        guard let cached else { return false }
        return bundle.isFull && bundle.revision < cached
    }
}
