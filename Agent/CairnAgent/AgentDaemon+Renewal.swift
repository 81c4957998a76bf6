import AsyncHTTPClient
import CairnCommon
import Foundation
import Logging

extension AgentDaemon {
    /// Renews the client certificate over mTLS two thirds into its lifetime. Once it has expired, the site can
    /// only get a new one after an administrator runs `cairnctl cluster approve --renew`; until then it keeps
    /// running what it has.
    func renewIfDue(_ identity: inout AgentIdentity, key: AgentKey) async throws {
        guard let window = identity.certificateWindow else { return }
        let now = configuration.clock()
        let answer: EnrolmentStatus
        if now >= window.expiresAt {
            let anonymous = hubClient(identity, tls: try identity.anonymousTLS())
            answer = try await anonymous.enrolment(identity)
            guard let issued = answer.certificate, issued != identity.certificatePEM else {
                logger.error(
                    "client certificate expired; an administrator must run: cairnctl cluster approve --renew",
                    metadata: ["cluster.name": .string(identity.clusterName)])
                return
            }
        } else if now >= window.renewAt {
            answer = try await currentHub.renew(RenewRequest(csr: try key.csr(cluster: identity.clusterName)), identity: identity)
        } else {
            return
        }
        guard let issued = answer.certificate else { return }
        identity.certificatePEM = issued
        // The bundle comes over a connection the pinned CA already verified: during a CA rotation it carries the
        // successor, so the site keeps trusting the hub when the new CA takes over.
        if let bundle = answer.caBundle, bundle != identity.caPEM, (try? TrustMaterial.certificates(pem: bundle)) != nil {
            identity.caPEM = bundle
        }
        try cache.saveIdentity(identity)
        try useClient(for: identity, key: key)
        await renewed.fire()
        await statusWakeup.fire()
        logger.info("client certificate renewed", metadata: ["cluster.name": .string(identity.clusterName)])
    }
}
