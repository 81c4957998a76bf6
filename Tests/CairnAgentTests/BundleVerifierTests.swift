import CairnAgent
import CairnCommon
import CairnHub
import CairnTestSupport
import Foundation
import Testing

/// Bundles signed by a real hub key, then tampered with or replayed.
@Suite(.ownThread) struct BundleVerifierTests {
    let directory: TemporaryDirectory
    let pki: HubPKI
    let identity: AgentIdentity

    init() throws {
        directory = try TemporaryDirectory("verifier")
        pki = try HubPKI.loadOrCreate(directory: directory.appending("pki"), names: ["localhost"])
        var identity = AgentIdentity(hubURL: "https://localhost", clusterName: "c1", labels: [:], caPEM: pki.caPEM, caFingerprint: pki.fingerprint)
        identity.signingKey = pki.signingPublicKey
        self.identity = identity
    }

    func work(_ name: String) -> ManifestWork {
        var work = ManifestWork(metadata: ObjectMeta(name: name, namespace: "c1"), spec: .init(manifests: [["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": .string(name), "namespace": "default"]]]))
        work.metadata.generation = 1
        return work
    }

    /// What the hub sends: the encoded bundle, its state digest and the signature.
    func signed(_ bundle: WorkBundle, for cluster: String? = nil, state: [ManifestWork]? = nil, by signer: HubPKI? = nil) throws -> (bytes: [UInt8], digest: String, state: String, signature: String) {
        let encoded = try BundleCodec().encode(bundle)
        let stateDigest = BundleStatement.stateDigest(try (state ?? bundle.works).map { ($0.name, try BundleStatement.workHash($0)) })
        let signature = try (signer ?? pki).sign(BundleStatement(cluster: cluster ?? bundle.cluster, revision: bundle.revision, bundleDigest: encoded.digest, stateDigest: stateDigest))
        return (encoded.bytes, encoded.digest, stateDigest, signature)
    }

    @Test func `a signed bundle passes and commits with its state digest`() throws {
        defer { directory.remove() }
        let cache = try AgentCache(path: directory.appending("agent.sqlite"))
        let sent = try signed(WorkBundle(cluster: "c1", revision: 2, since: nil, works: [work("a"), work("b")]))
        let (bundle, statement) = try BundleVerifier(identity: identity).verify(bytes: sent.bytes, digest: sent.digest, stateDigest: sent.state, signature: sent.signature, since: nil)
        try cache.commit(bundle, statement: statement, signature: sent.signature)
        #expect(try cache.verifyState(signingKey: identity.signingKey, cluster: "c1") == nil)
    }

    @Test func `one flipped byte is refused`() throws {
        defer { directory.remove() }
        var sent = try signed(WorkBundle(cluster: "c1", revision: 2, since: nil, works: [work("a")]))
        sent.bytes[sent.bytes.count / 2] ^= 0x20
        let error = #expect(throws: CairnError.self) {
            try BundleVerifier(identity: identity).verify(bytes: sent.bytes, digest: sent.digest, stateDigest: sent.state, signature: sent.signature, since: nil)
        }
        #expect(error?.code == .bundleRejected)
    }

    @Test func `a valid bundle for another cluster is refused`() throws {
        defer { directory.remove() }
        var other = work("a")
        other.metadata.namespace = "c2"
        let sent = try signed(WorkBundle(cluster: "c2", revision: 2, since: nil, works: [other]))
        let error = #expect(throws: CairnError.self) {
            try BundleVerifier(identity: identity).verify(bytes: sent.bytes, digest: sent.digest, stateDigest: sent.state, signature: sent.signature, since: nil)
        }
        #expect(error?.message.contains("not signed for cluster c1") == true)
    }

    @Test func `an older delta replayed is refused; an older full bundle is a hub gone back`() throws {
        defer { directory.remove() }
        let delta = try signed(WorkBundle(cluster: "c1", revision: 3, since: 7, works: [work("a")]))
        let error = #expect(throws: CairnError.self) {
            try BundleVerifier(identity: identity).verify(bytes: delta.bytes, digest: delta.digest, stateDigest: delta.state, signature: delta.signature, since: 7)
        }
        #expect(error?.message.contains("older than the cached 7") == true)
        let full = try signed(WorkBundle(cluster: "c1", revision: 3, since: nil, works: [work("a")]))
        let (bundle, _) = try BundleVerifier(identity: identity).verify(bytes: full.bytes, digest: full.digest, stateDigest: full.state, signature: full.signature, since: 7)
        #expect(BundleVerifier.wentBack(bundle, cached: 7))
        #expect(!BundleVerifier.wentBack(bundle, cached: 2))
        #expect(!BundleVerifier.wentBack(bundle, cached: nil))
    }

    @Test func `a bundle signed by another hub is refused`() throws {
        defer { directory.remove() }
        let stranger = try HubPKI.loadOrCreate(directory: directory.appending("stranger"), names: ["localhost"])
        let sent = try signed(WorkBundle(cluster: "c1", revision: 2, since: nil, works: [work("a")]), by: stranger)
        #expect(throws: CairnError.self) {
            try BundleVerifier(identity: identity).verify(bytes: sent.bytes, digest: sent.digest, stateDigest: sent.state, signature: sent.signature, since: nil)
        }
    }

    @Test func `a delta that does not lead to the signed state commits nothing`() throws {
        defer { directory.remove() }
        let cache = try AgentCache(path: directory.appending("agent.sqlite"))
        let first = try signed(WorkBundle(cluster: "c1", revision: 1, since: nil, works: [work("a")]))
        let (bundle, statement) = try BundleVerifier(identity: identity).verify(bytes: first.bytes, digest: first.digest, stateDigest: first.state, signature: first.signature, since: nil)
        try cache.commit(bundle, statement: statement, signature: first.signature)
        // The hub's state at revision 2 holds a, b and c; this delta only brings b.
        let delta = try signed(WorkBundle(cluster: "c1", revision: 2, since: 1, works: [work("b")]), state: [work("a"), work("b"), work("c")])
        let (deltaBundle, deltaStatement) = try BundleVerifier(identity: identity).verify(bytes: delta.bytes, digest: delta.digest, stateDigest: delta.state, signature: delta.signature, since: 1)
        #expect(throws: CairnError.self) { try cache.commit(deltaBundle, statement: deltaStatement, signature: delta.signature) }
        #expect(try cache.revision() == 1)
        #expect(try cache.works().map(\.work.name) == ["a"])
    }

    @Test func `a cache altered on disk fails verification`() throws {
        defer { directory.remove() }
        let cache = try AgentCache(path: directory.appending("agent.sqlite"))
        let sent = try signed(WorkBundle(cluster: "c1", revision: 2, since: nil, works: [work("a")]))
        let (bundle, statement) = try BundleVerifier(identity: identity).verify(bytes: sent.bytes, digest: sent.digest, stateDigest: sent.state, signature: sent.signature, since: nil)
        try cache.commit(bundle, statement: statement, signature: sent.signature)
        // Written without a signed statement, as anything but the agent's verified path would.
        try cache.commit(WorkBundle(cluster: "c1", revision: 2, since: 2, works: [work("evil")]))
        #expect(try cache.verifyState(signingKey: identity.signingKey, cluster: "c1") != nil)
    }
}
