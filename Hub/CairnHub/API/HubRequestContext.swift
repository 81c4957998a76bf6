import CairnCommon
import Hummingbird
import NIOCore
import NIOSSL

/// The request context of every hub route. Bodies are capped deliberately: a work's manifests may reach 8 MiB
/// of JSON; anything larger is refused before it is read.
public struct HubRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }

    public var maxUploadSize: Int { 16 * 1024 * 1024 }

    /// The DER bytes of the client certificate the peer presented on this connection (already verified against
    /// the hub's CA by TLS).
    func peerCertificateDER() async throws -> [UInt8]? {
        let channel = self.channel
        // Over HTTP/2 the request has a stream channel of its own; TLS is on its parent, the connection.
        let connection = channel.parent ?? channel
        return try await connection.eventLoop.submit { () -> [UInt8]? in
            guard let tls = try? connection.pipeline.syncOperations.handler(type: NIOSSLHandler.self) else {
                // Only a connection already torn down has no TLS handler; nobody is left to answer.
                throw CairnError(.unauthorized, "the connection closed before its client certificate was read", field: "certificate")
            }
            return try tls.peerCertificate?.toDERBytes()
        }.get()
    }
}
