import AsyncHTTPClient
import CairnCommon
import Foundation
import Logging

extension AgentDaemon {
    /// The accepted identity: from the cache when there is one, otherwise by enrolling and waiting for approval.
    func enrolled(key: AgentKey) async throws -> AgentIdentity {
        var identity = try cache.identity()
        if let cached = identity, let pinned = configuration.caFingerprint, cached.caFingerprint != pinned.lowercased() {
            throw CairnError(
                .forbidden, "the cache trusts the hub CA \(cached.caFingerprint), not the configured \(pinned); refusing to start",
                field: "ca-fingerprint")
        }
        if identity == nil {
            guard let hubURL = configuration.hubURL, let name = configuration.clusterName else {
                throw CairnError(.invalid, "this agent has not enrolled yet: --hub and --name are required", field: "hub")
            }
            guard let fingerprint = configuration.caFingerprint else {
                throw CairnError(
                    .invalid, "this agent has not enrolled yet: --ca-fingerprint is required (cairnctl token create prints it)",
                    field: "ca-fingerprint")
            }
            try Names.validateLabel(name, field: "name")
            try Names.validateLabels(configuration.labels, field: "label")
            let caPEM = try await retrying("fetching the hub CA") {
                try await self.connections.call { try await HubClient.pinnedCA(http: $0, baseURL: hubURL, fingerprint: fingerprint) }
            }
            // Saved before the hub hears of it: a crash after the hub accepts must not lose the secret.
            identity = AgentIdentity(hubURL: hubURL, clusterName: name, labels: configuration.labels, caPEM: caPEM, caFingerprint: fingerprint.lowercased())
            try cache.saveIdentity(identity!)
        }
        guard var identity else { throw CancellationError() }
        if identity.enrolment == .accepted, identity.certificatePEM != nil { return identity }
        let hub = hubClient(identity, tls: try identity.tls(key: key))
        var backoff = Backoff(initial: configuration.backoffInitial, maximum: min(configuration.backoffMax, 5))
        var sentEnrolment = false
        while true {
            do {
                let status: EnrolmentStatus
                if !sentEnrolment {
                    guard let token = configuration.token else {
                        throw CairnError(.invalid, "this agent has not enrolled yet: --token (or --token-file) is required", field: "token")
                    }
                    let claims = try await adapter.claims()
                    let request = EnrolRequest(
                        token: token, clusterName: identity.clusterName, labels: identity.labels, credentialHash: identity.credentialHash,
                        csr: try key.csr(cluster: identity.clusterName), claims: claims.claims)
                    do {
                        status = try await hub.enrol(request)
                    } catch let error as HubError where error.status == 401 || error.status == 409 {
                        // A used-up token may have been spent by our own earlier attempt: ask with the credential.
                        if let known = try? await hub.enrolment(identity) { status = known } else { throw error }
                    }
                    sentEnrolment = true
                } else {
                    status = try await hub.enrolment(identity)
                }
                try cache.recordContact()
                if status.state != identity.enrolment || status.certificate != identity.certificatePEM {
                    identity.enrolment = status.state
                    identity.certificatePEM = status.certificate
                    identity.signingKey = status.signingKey ?? identity.signingKey
                    if let bundle = status.caBundle, (try? TrustMaterial.certificates(pem: bundle)) != nil { identity.caPEM = bundle }
                    try cache.saveIdentity(identity)
                    logger.info("enrolment changed", metadata: ["cluster.name": .string(identity.clusterName), "cluster.enrolment": .string(status.state.rawValue)])
                }
                if status.state == .accepted, identity.certificatePEM != nil, identity.signingKey != nil { return identity }
            } catch let error as HubError where error.status == 400 || (error.status == 401 && !sentEnrolment) {
                logger.error("enrolment refused", metadata: ["error.message": .string(error.error.message)])
                throw error
            } catch let error as CairnError {
                throw error
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                logger.warning("hub not reachable for enrolment", metadata: ["error.message": .string("\(error)")])
                try await Task.sleep(for: backoff.next(after: error))
                continue
            }
            try await Task.sleep(for: backoff.next())
        }
    }

    /// Retries a network step with backoff until it succeeds; a `CairnError` (a refusal) ends it.
    func retrying<T: Sendable>(_ what: String, _ body: @Sendable () async throws -> T) async throws -> T {
        var backoff = Backoff(initial: configuration.backoffInitial, maximum: min(configuration.backoffMax, 5))
        while true {
            do {
                return try await body()
            } catch let error as CairnError {
                throw error
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                logger.warning("hub not reachable", metadata: ["step": .string(what), "error.message": .string("\(error)")])
                try await Task.sleep(for: backoff.next(after: error))
            }
        }
    }
}
