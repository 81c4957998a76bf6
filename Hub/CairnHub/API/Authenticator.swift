import CairnCommon
import Foundation
import Hummingbird
import Synchronization
import X509

/// Decides who a request comes from. Administrators present bearer tokens; agents present the client
/// certificate the hub issued for the key they enrolled with, and the cluster comes from that certificate.
struct Authenticator: Sendable {
    let store: any HubStore
    let certificates = PeerCertificates()

    /// An administrator's bearer token; viewers may only read.
    func requireAdmin(_ request: Request, write: Bool) async throws -> AdminRole {
        guard let token = Self.bearer(request) else {
            throw CairnError(.unauthorized, "an admin bearer token is required (Authorization: Bearer ...)", field: "Authorization")
        }
        guard let role = try await store.adminRole(tokenHash: Secrets.hash(token)) else {
            throw CairnError(.unauthorized, "the bearer token is not a valid admin token", field: "Authorization")
        }
        if write && role != .admin {
            throw CairnError(.forbidden, "the \(role.rawValue) role may not change anything")
        }
        return role
    }

    /// The cluster named by the peer's client certificate, which must carry the key the cluster enrolled with and
    /// must be the cluster the request is about.
    func requireCluster(_ context: HubRequestContext, acting cluster: String) async throws -> String {
        guard let der = try await context.peerCertificateDER() else { throw Self.refusal(.noCertificate, acting: cluster) }
        let holder = try certificates.holder(der: der)
        guard let name = holder.name, let access = try await store.access(cluster: name),
            Secrets.constantTimeEqual(access.keyHash, holder.keyHash)
        else {
            throw Self.refusal(.notEnrolled, acting: cluster)
        }
        guard access.state == .accepted, name == cluster else { throw Self.refusal(.state(access.state, name), acting: cluster) }
        return name
    }

    enum Refusal {
        case noCertificate, notEnrolled
        case state(EnrolmentState, String)
    }

    /// Why an agent's request is refused. Built here, not in `requireCluster`, which every agent request awaits
    /// (a held long-poll's task keeps the deepest frames it had: see `AgentController.bundle`).
    @inline(never)
    static func refusal(_ refusal: Refusal, acting cluster: String) -> CairnError {
        switch refusal {
        case .noCertificate: CairnError(.unauthorized, "a client certificate issued by this hub is required", field: "certificate")
        case .notEnrolled: CairnError(.unauthorized, "the client certificate does not belong to an enrolled cluster", field: "certificate")
        case .state(.pending, let name): CairnError(.forbidden, "cluster \(name) is waiting for approval")
        case .state(.denied, let name): CairnError(.forbidden, "cluster \(name) was denied")
        case .state(_, let name):
            CairnError(.forbidden, "cluster \(name)'s certificate may not act for cluster \(cluster)", field: "cluster")
        }
    }

    /// A site that has enrolled but holds no certificate yet asks how its enrolment stands with the secret whose
    /// hash it sent at enrolment (`NAME:SECRET`).
    func requireEnrolmentCredential(_ request: Request) async throws -> (String, ClusterIdentity) {
        guard let token = Self.bearer(request) else {
            throw CairnError(.unauthorized, "the enrolment credential is required (Authorization: Bearer ...)", field: "Authorization")
        }
        let parts = token.split(separator: ":", maxSplits: 1)
        guard parts.count == 2, let identity = try await store.identity(cluster: String(parts[0])),
            Secrets.constantTimeEqual(identity.credentialHash, Secrets.hash(String(parts[1])))
        else {
            throw CairnError(.unauthorized, "the enrolment credential is not valid", field: "Authorization")
        }
        return (String(parts[0]), identity)
    }

    /// A held request (another key asked for an enrolled name) asking how it stands: it stays pending.
    func heldEnrolment(_ request: Request) async throws -> (String, String)? {
        guard let token = Self.bearer(request) else { return nil }
        let parts = token.split(separator: ":", maxSplits: 1)
        guard parts.count == 2, try await store.isHeld(cluster: String(parts[0]), credentialHash: Secrets.hash(String(parts[1]))) else { return nil }
        return (String(parts[0]), "held: cluster \(parts[0]) is enrolled with another key; an administrator has been alerted")
    }

    static func bearer(_ request: Request) -> String? { bearer(header: request.headers[.authorization]) }

    /// The token of an `Authorization: Bearer …` header, without the blanks around it; nil for any other scheme or
    /// none.
    static func bearer(header: String?) -> String? {
        guard let header, header.hasPrefix("Bearer ") else { return nil }
        // Trimmed with the standard library: Foundation's `trimmingCharacters(in:)` cost 1% of the hub while it
        // took writes (every administrator's request reads its token twice: authentication and the audit record).
        var token = header.dropFirst("Bearer ".count).drop(while: \.isWhitespace)
        while token.last?.isWhitespace == true { token.removeLast() }
        return token.isEmpty ? nil : String(token)
    }
}

/// What each client certificate says about who presents it — its common name and the hash of its key — read
/// once per certificate instead of parsing it on every request. TLS has verified the certificate before a request
/// is read; the same bytes always say the same thing, so what is remembered is keyed by a digest of the bytes.
/// Whether the cluster is still accepted, and still holds that key, is asked of the store every time.
final class PeerCertificates: Sendable {
    struct Holder: Sendable {
        let name: String?
        let keyHash: String
    }

    private let known = Mutex<[String: Holder]>([:])
    /// Beyond this many certificates (a fleet's worth, one per site), the memory starts afresh.
    let capacity: Int

    init(capacity: Int = 50_000) {
        self.capacity = capacity
    }

    func holder(der: [UInt8]) throws -> Holder {
        let digest = Hashing.sha256(der)
        if let holder = known.withLock({ $0[digest] }) { return holder }
        let certificate: Certificate
        do {
            certificate = try Certificate(derEncoded: der)
        } catch {
            throw CairnError(.unauthorized, "the client certificate cannot be read: \(error)", field: "certificate")
        }
        let holder = Holder(name: TrustMaterial.commonName(certificate), keyHash: TrustMaterial.keyHash(certificate.publicKey))
        known.withLock { known in
            if known.count >= capacity { known.removeAll(keepingCapacity: true) }
            known[digest] = holder
        }
        return holder
    }
}
