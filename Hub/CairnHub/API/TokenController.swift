import CairnCommon
import Foundation
import Hummingbird

/// Enrolment tokens: created, listed and revoked by administrators. The secret is returned once.
struct TokenController: Sendable {
    let store: any HubStore
    let auth: Authenticator
    let caFingerprint: String

    func addRoutes(to group: RouterGroup<HubRequestContext>) {
        group.post("tokens") { request, context in
            _ = try await auth.requireAdmin(request, write: true)
            let ask = try await request.decode(TokenRequest.self, context: context, what: "token request")
            try Names.validateLabels(ask.labels, field: "labels")
            let ttl = ask.ttlSeconds ?? 86_400
            guard ttl > 0, ttl <= 366 * 86_400 else {
                throw CairnError(.invalid, "ttlSeconds must be between 1 second and 366 days", field: "ttlSeconds")
            }
            if let uses = ask.maxUses, uses < 1 {
                throw CairnError(.invalid, "maxUses must be at least 1", field: "maxUses")
            }
            let now = Date()
            let id = String(Secrets.hash(Secrets.random()).prefix(12))
            let secret = Secrets.random()
            var token = EnrolmentToken(
                id: id, autoApprove: ask.autoApprove ?? false, labels: ask.labels ?? [:],
                expiresAt: now.addingTimeInterval(ttl), maxUses: ask.maxUses, createdAt: now)
            try await store.createToken(token, secretHash: Secrets.hash(secret))
            token.token = "\(id).\(secret)"
            token.caFingerprint = caFingerprint
            return try Response.json(token, status: .created)
        }
        group.get("tokens") { request, _ in
            _ = try await auth.requireAdmin(request, write: false)
            return try Response.json(ItemList(items: try await store.tokens()))
        }
        group.delete("tokens/:id") { request, context in
            _ = try await auth.requireAdmin(request, write: true)
            let id = try request.pathParameter("id", context: context)
            return try Response.json(try await store.revokeToken(id: id))
        }
    }
}
