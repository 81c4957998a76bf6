import CairnCommon
import Foundation
import Hummingbird

/// Decides who a request comes from. All credential checks of the hub live here, so that the trust model
/// (mTLS client certificates for agents) can replace them in one place.
struct Authenticator: Sendable {
    let store: any HubStore

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

    /// The cluster an agent's credential names. Agents of pending clusters may only ask about their enrolment.
    func requireCluster(_ request: Request, allowPending: Bool = false) async throws -> String {
        guard let token = Self.bearer(request) else {
            throw CairnError(.unauthorized, "a cluster credential is required (Authorization: Bearer ...)", field: "Authorization")
        }
        let parts = token.split(separator: ":", maxSplits: 1)
        guard parts.count == 2 else {
            throw CairnError(.unauthorized, "the cluster credential is malformed", field: "Authorization")
        }
        let name = String(parts[0])
        guard let (hash, state) = try await store.credential(cluster: name),
            Secrets.constantTimeEqual(hash, Secrets.hash(String(parts[1])))
        else {
            throw CairnError(.unauthorized, "the cluster credential is not valid", field: "Authorization")
        }
        switch state {
        case .accepted: return name
        case .pending where allowPending: return name
        case .pending: throw CairnError(.forbidden, "cluster \(name) is waiting for approval")
        case .denied: throw CairnError(.forbidden, "cluster \(name) was denied")
        }
    }

    static func bearer(_ request: Request) -> String? {
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer ") else { return nil }
        let token = header.dropFirst("Bearer ".count).trimmingCharacters(in: .whitespaces)
        return token.isEmpty ? nil : token
    }
}
