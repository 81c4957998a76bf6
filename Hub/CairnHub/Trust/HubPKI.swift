import CairnCommon
import Crypto
import Foundation
import NIOSSL
import SwiftASN1
import X509

/// The hub's keys and certificates: a CA that issues cluster client certificates, a serving certificate for the
/// hub's TLS port, and the Ed25519 key bundles are signed with. Created on first start under `pki/` in the state
/// directory (keys 0600), loaded afterwards; the serving certificate is reissued at each start for the names given.
public struct HubPKI: Sendable {
    public let caCertificate: Certificate
    /// Every CA whose client certificates are accepted and which agents should trust: the active one first, then a
    /// staged successor or a predecessor being retired.
    public let trustedCertificates: [Certificate]
    public let servingCertificate: Certificate
    // Keys are kept serialised: swift-crypto's key types are not Sendable on every version we may resolve.
    private let caKeyPEM: String
    private let servingKeyPEM: String
    private let signingKeyBytes: Data

    var caKey: P256.Signing.PrivateKey { get throws { try P256.Signing.PrivateKey(pemRepresentation: caKeyPEM) } }
    var signingKey: Curve25519.Signing.PrivateKey { get throws { try Curve25519.Signing.PrivateKey(rawRepresentation: signingKeyBytes) } }

    public var fingerprint: String { (try? TrustMaterial.fingerprint(caCertificate)) ?? "" }
    /// The trust bundle, as served at /api/v1/ca and handed to agents at enrolment and renewal.
    public var caPEM: String { (try? TrustMaterial.pem(trustedCertificates)) ?? "" }
    /// The bundle-signing public key, base64, as agents receive it at enrolment.
    public var signingPublicKey: String {
        ((try? signingKey)?.publicKey.rawRepresentation.base64EncodedString()) ?? ""
    }

    public static func loadOrCreate(directory: String, names: [String], now: Date = Date()) throws -> HubPKI {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }
        let caKey: P256.Signing.PrivateKey
        let caCertificate: Certificate
        if FileManager.default.fileExists(atPath: path("ca.key")) {
            caKey = try P256.Signing.PrivateKey(pemRepresentation: try String(contentsOfFile: path("ca.key"), encoding: .utf8))
            caCertificate = try TrustMaterial.certificates(pem: try String(contentsOfFile: path("ca.pem"), encoding: .utf8))[0]
        } else {
            (caKey, caCertificate) = try makeCA(name: "Cairn hub CA", now: now)
            try write(caKey.pemRepresentation, to: path("ca.key"), mode: 0o600)
            try write(try TrustMaterial.pem([caCertificate]), to: path("ca.pem"), mode: 0o644)
        }
        var trusted = [caCertificate]
        if let bundle = try? String(contentsOfFile: path("trust.pem"), encoding: .utf8) {
            trusted = try TrustMaterial.certificates(pem: bundle)
        }
        let signingKey: Curve25519.Signing.PrivateKey
        if let stored = try? String(contentsOfFile: path("bundle-signing.key"), encoding: .utf8),
            let raw = Data(base64Encoded: stored.trimmingCharacters(in: .whitespacesAndNewlines))
        {
            signingKey = try Curve25519.Signing.PrivateKey(rawRepresentation: raw)
        } else {
            signingKey = Curve25519.Signing.PrivateKey()
            try write(signingKey.rawRepresentation.base64EncodedString() + "\n", to: path("bundle-signing.key"), mode: 0o600)
        }
        let servingKey = P256.Signing.PrivateKey()
        let servingCertificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(servingKey.publicKey),
            notValidBefore: now.addingTimeInterval(-300), notValidAfter: now.addingTimeInterval(365 * 86_400),
            issuer: caCertificate.subject, subject: try DistinguishedName { OrganizationName("Cairn"); CommonName("cairn-hub") },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames(Self.alternativeNames(names))
            },
            issuerPrivateKey: .init(caKey))
        return HubPKI(
            caCertificate: caCertificate, trustedCertificates: trusted, servingCertificate: servingCertificate, caKeyPEM: caKey.pemRepresentation,
            servingKeyPEM: servingKey.pemRepresentation, signingKeyBytes: signingKey.rawRepresentation)
    }

    static func makeCA(name: String, now: Date) throws -> (P256.Signing.PrivateKey, Certificate) {
        let key = P256.Signing.PrivateKey()
        let subject = try DistinguishedName { OrganizationName("Cairn"); CommonName(name) }
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
            notValidBefore: now.addingTimeInterval(-300), notValidAfter: now.addingTimeInterval(10 * 365 * 86_400),
            issuer: subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: .init(key.publicKey))
            },
            issuerPrivateKey: .init(key))
        return (key, certificate)
    }

    /// DNS names and IP addresses for the serving certificate; an entry that parses as an IP address is one.
    static func alternativeNames(_ names: [String]) -> [GeneralName] {
        var result = [GeneralName]()
        for name in Set(names) where !name.isEmpty {
            if let bytes = IPAddressBytes.parse(name) {
                result.append(.ipAddress(ASN1OctetString(contentBytes: ArraySlice(bytes))))
            } else {
                result.append(.dnsName(name))
            }
        }
        return result
    }

    /// Checks a site's certificate signing request and issues its client certificate, naming the cluster.
    public func issueClientCertificate(csrPEM: String, cluster: String, lifetime: TimeInterval, now: Date = Date()) throws -> Certificate {
        let csr = try Self.parseCSR(csrPEM, cluster: cluster)
        return try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: csr.publicKey,
            // Backdated for clock skew and for certificate times' whole seconds (a certificate that is not valid yet
            // fails the handshake with the same alert as an expired one), never by a large share of a short lifetime.
            notValidBefore: now.addingTimeInterval(-max(2, min(60, lifetime / 20))), notValidAfter: now.addingTimeInterval(lifetime),
            issuer: caCertificate.subject,
            subject: try DistinguishedName { OrganizationName("cairn-cluster"); CommonName(cluster) },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.clientAuth])
            },
            issuerPrivateKey: .init(try caKey))
    }

    /// A CSR must be signed by its own key and name the cluster it asks for.
    public static func parseCSR(_ pem: String, cluster: String) throws -> CertificateSigningRequest {
        let csr: CertificateSigningRequest
        do { csr = try CertificateSigningRequest(pemEncoded: pem) } catch {
            throw CairnError(.invalid, "csr is not a PEM certificate signing request", field: "csr")
        }
        guard csr.publicKey.isValidSignature(csr.signature, for: csr) else {
            throw CairnError(.invalid, "csr signature does not verify", field: "csr")
        }
        let subject = csr.subject.flatMap { $0 }.first { $0.type == .RDNAttributeType.commonName }?.value.description
        guard subject == cluster else {
            throw CairnError(.invalid, "csr subject names '\(subject ?? "nothing")', not cluster \(cluster)", field: "csr")
        }
        return csr
    }

    /// Signs what an agent must verify before it commits a bundle.
    public func sign(_ statement: BundleStatement) throws -> String {
        try (try signingKey).signature(for: statement.signedBytes).base64EncodedString()
    }

    /// The server side of the hub's TLS port: client certificates are optional (a new site has none yet) but,
    /// when presented, must chain to the hub's CA.
    public func serverTLS() throws -> TLSConfiguration {
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try TrustMaterial.nioCertificates([servingCertificate, caCertificate]).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(servingKeyPEM.utf8), format: .pem)))
        configuration.minimumTLSVersion = .tlsv12
        // Waiting for a peer's close_notify protects nothing HTTP does not frame itself; with thousands of agents
        // connected, the default five seconds would hold every hub shutdown.
        configuration.shutdownTimeout = .milliseconds(250)
        configuration.certificateVerification = .optionalVerification
        configuration.trustRoots = .certificates(try TrustMaterial.nioCertificates(trustedCertificates))
        return configuration
    }

    static func write(_ text: String, to path: String, mode: Int) throws {
        guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: mode]) else {
            throw CairnError(.internal, "cannot write \(path)")
        }
    }
}

enum IPAddressBytes {
    static func parse(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }
}
