import CairnCommon
import Foundation
import Hummingbird

/// Records every administrator write — who (by token hash and role), what, when, and how it ended — including
/// the refused ones. Agent traffic and reads are not audited.
struct AuditMiddleware: RouterMiddleware {
    typealias Context = HubRequestContext
    let store: any HubStore

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        guard request.method != .get, request.method != .head, path.hasPrefix("/api/v1/"), !path.hasPrefix("/api/v1/agent/") else {
            return try await next(request, context)
        }
        return try await audited(request, path: path, context: context, next: next)
    }

    /// Kept out of `handle`, whose frame every request holds while it runs (a held long-poll for up to a minute):
    /// only administrators' writes need this one's.
    @inline(never)
    private func audited(
        _ request: Request, path: String, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let response = try await next(request, context)
        var actor = "anonymous"
        if let token = Authenticator.bearer(request) {
            let hash = Secrets.hash(token)
            let role = (try? await store.adminRole(tokenHash: hash))?.rawValue ?? "unknown"
            actor = "\(role):\(hash.prefix(12))"
        }
        let result = (200..<300).contains(Int(response.status.code)) ? "ok" : response.status.reasonPhrase
        do {
            try await store.recordAudit(
                AuditEntry(time: Date(), actor: actor, action: "\(request.method) \(path)", status: Int(response.status.code), result: result))
        } catch {
            context.logger.error("audit record failed", metadata: ["error.message": .string("\(error)")])
        }
        return response
    }
}
