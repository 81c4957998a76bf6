import CairnCommon
import Crypto
import Foundation
import NIOSSL
import X509

/// Who this agent is to its hub and how it proves it. All agent credential handling lives here: the site's own
/// P-256 key (a 0600 file that never leaves the site), the pinned hub CA, the client certificate the hub issued,
/// and the hub's bundle-signing key.
public struct AgentIdentity: Codable, Sendable, Equatable {
    public var hubURL: String
    public var clusterName: String
    /// Made on the site at first start; its hash lets the site ask how its enrolment stands before it has a certificate.
    public var secret: String
    public var enrolment: EnrolmentState
    public var labels: [String: String]
    /// The hub CA, fetched once and accepted only because its fingerprint matched the pinned one.
    public var caPEM: String
    public var caFingerprint: String
    public var certificatePEM: String?
    public var signingKey: String?

    public init(hubURL: String, clusterName: String, labels: [String: String], caPEM: String, caFingerprint: String) {
        self.hubURL = hubURL
        self.clusterName = clusterName
        self.secret = Secrets.random()
        self.enrolment = .pending
        self.labels = labels
        self.caPEM = caPEM
        self.caFingerprint = caFingerprint
    }

    public var credentialHash: String { Secrets.hash(secret) }
    /// Only for asking about enrolment; everything else is mTLS.
    public var enrolmentAuthorization: String { "Bearer \(clusterName):\(secret)" }

    /// When the client certificate should be renewed (two thirds into its lifetime) and when it expires.
    public var certificateWindow: (renewAt: Date, expiresAt: Date)? {
        guard let certificatePEM, let certificate = try? TrustMaterial.certificates(pem: certificatePEM).first else { return nil }
        let lifetime = certificate.notValidAfter.timeIntervalSince(certificate.notValidBefore)
        return (certificate.notValidBefore.addingTimeInterval(lifetime * 2 / 3), certificate.notValidAfter)
    }

    /// TLS trusting only the pinned CA, presenting no certificate (to ask about enrolment).
    public func anonymousTLS() throws -> TLSConfiguration {
        try TrustMaterial.clientTLS(roots: try TrustMaterial.certificates(pem: caPEM))
    }

    /// TLS trusting only the pinned CA; with the client certificate once the hub has issued one.
    public func tls(key: AgentKey) throws -> TLSConfiguration {
        let roots = try TrustMaterial.certificates(pem: caPEM)
        guard let certificatePEM else { return try TrustMaterial.clientTLS(roots: roots) }
        return try TrustMaterial.clientTLS(roots: roots, chain: try TrustMaterial.certificates(pem: certificatePEM), key: try key.privateKey)
    }
}

/// The site's private key, in a 0600 PEM file beside the cache.
public struct AgentKey: Sendable {
    let pem: String

    public static func loadOrCreate(path: String) throws -> AgentKey {
        if let pem = try? String(contentsOfFile: path, encoding: .utf8) {
            _ = try P256.Signing.PrivateKey(pemRepresentation: pem)
            return AgentKey(pem: pem)
        }
        let pem = P256.Signing.PrivateKey().pemRepresentation
        guard FileManager.default.createFile(atPath: path, contents: Data(pem.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw CairnError(.internal, "cannot write the agent key to \(path)")
        }
        return AgentKey(pem: pem)
    }

    /// A fresh key held in memory only (for simulated sites, which have no disk of their own).
    public static func ephemeral() -> AgentKey {
        AgentKey(pem: P256.Signing.PrivateKey().pemRepresentation)
    }

    var privateKey: P256.Signing.PrivateKey { get throws { try P256.Signing.PrivateKey(pemRepresentation: pem) } }

    /// A certificate signing request naming the cluster, signed with this key.
    public func csr(cluster: String) throws -> String {
        let key = try privateKey
        let request = try CertificateSigningRequest(
            version: .v1, subject: try DistinguishedName { CommonName(cluster) }, privateKey: .init(key),
            attributes: CertificateSigningRequest.Attributes(), signatureAlgorithm: .ecdsaWithSHA256)
        return try request.serializeAsPEM().pemString
    }
}
