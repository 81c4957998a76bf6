import Crypto
import Foundation
import NIOSSL
import SwiftASN1
import X509

/// PEM, fingerprints and TLS configurations shared by the hub, the agent and cairnctl.
public enum TrustMaterial {
    /// `sha256:<hex>` of a certificate's DER encoding — what operators pin (as kubeadm's discovery hash).
    public static func fingerprint(_ certificate: Certificate) throws -> String {
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        return "sha256:" + Hashing.sha256(serializer.serializedBytes)
    }

    /// Hex SHA-256 of a public key's SubjectPublicKeyInfo: what binds a cluster to the key it enrolled with.
    public static func keyHash(_ key: Certificate.PublicKey) -> String {
        Hashing.sha256(key.subjectPublicKeyInfoBytes)
    }

    public static func certificates(pem: String) throws -> [Certificate] {
        let documents = try PEMDocument.parseMultiple(pemString: pem)
        let certificates = try documents.filter { $0.discriminator == "CERTIFICATE" }.map { try Certificate(pemDocument: $0) }
        guard !certificates.isEmpty else { throw CairnError(.invalid, "no certificate in PEM text") }
        return certificates
    }

    public static func pem(_ certificates: [Certificate]) throws -> String {
        try certificates.map { try $0.serializeAsPEM().pemString }.joined(separator: "\n") + "\n"
    }

    public static func nioCertificates(_ certificates: [Certificate]) throws -> [NIOSSLCertificate] {
        try certificates.map { certificate in
            var serializer = DER.Serializer()
            try serializer.serialize(certificate)
            return try NIOSSLCertificate(bytes: serializer.serializedBytes, format: .der)
        }
    }

    /// A client configuration trusting only `roots` (the pinned hub CA), optionally presenting a client certificate.
    public static func clientTLS(roots: [Certificate], chain: [Certificate] = [], key: P256.Signing.PrivateKey? = nil) throws -> TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        // HTTP frames its own messages, so waiting for the peer's close_notify protects nothing; a long-poll
        // cancelled at shutdown would otherwise hold the agent for the default five seconds.
        configuration.shutdownTimeout = .milliseconds(250)
        configuration.trustRoots = .certificates(try nioCertificates(roots))
        if let key, !chain.isEmpty {
            configuration.certificateChain = try nioCertificates(chain).map { .certificate($0) }
            configuration.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(key.pemRepresentation.utf8), format: .pem))
        }
        return configuration
    }

    /// Used once, to fetch the CA so its fingerprint can be compared with the pinned one. Nothing else is sent.
    public static func unverifiedTLS() -> TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification = .none
        return configuration
    }

    /// The cluster name a client certificate names (its subject's common name).
    public static func commonName(_ certificate: Certificate) -> String? {
        for rdn in certificate.subject {
            for attribute in rdn where attribute.type == .RDNAttributeType.commonName {
                return attribute.value.description
            }
        }
        return nil
    }

    /// Chooses, among the certificates a hub serves at /api/v1/ca, the one whose fingerprint was pinned.
    public static func pinned(_ certificates: [Certificate], fingerprint: String) throws -> [Certificate] {
        let wanted = fingerprint.lowercased()
        guard try certificates.contains(where: { try Self.fingerprint($0) == wanted }) else {
            let offered = try certificates.map(Self.fingerprint).joined(separator: ", ")
            throw CairnError(.forbidden, "the hub's CA does not match the pinned fingerprint \(fingerprint) (it offered \(offered)); refusing to talk to it", field: "ca-fingerprint")
        }
        return certificates
    }
}
