import AsyncHTTPClient
import CairnCommon
import Foundation
import NIOHTTP1
import NIOSSL
import X509
import Yams

/// Where the API server is and how to authenticate: from a kubeconfig file (current context or a named one).
/// Bearer tokens from a file are re-read when they change (service-account tokens rotate).
public struct KubeConnection: Sendable {
    public var server: String
    public var tls: TLSConfiguration
    public var token: String?
    public var tokenFile: String?

    /// A request to the API server at `path` (with its query), authenticated as this connection says.
    public func request(_ method: HTTPMethod, _ path: String, accept: String = "application/json") -> HTTPClientRequest {
        var request = HTTPClientRequest(url: server + path)
        request.method = method
        request.tlsConfiguration = tls
        request.headers.add(name: "Accept", value: accept)
        if let token = bearer() { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        return request
    }

    /// The bearer token to send now.
    public func bearer() -> String? {
        if let tokenFile, let text = try? String(contentsOfFile: tokenFile, encoding: .utf8) {
            return text.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return token
    }

    /// In-cluster: the service-account token and CA at the standard paths, KUBERNETES_SERVICE_HOST/_PORT.
    public static func inCluster(
        environment: [String: String] = ProcessInfo.processInfo.environment,
        directory: String = "/var/run/secrets/kubernetes.io/serviceaccount"
    ) throws -> KubeConnection {
        guard let host = environment["KUBERNETES_SERVICE_HOST"], let port = environment["KUBERNETES_SERVICE_PORT"] else {
            throw CairnError(.invalid, "not running in a cluster: KUBERNETES_SERVICE_HOST and _PORT are not set; give --kubeconfig", field: "kubeconfig")
        }
        let ca = try String(contentsOfFile: directory + "/ca.crt", encoding: .utf8)
        let server = host.contains(":") ? "https://[\(host)]:\(port)" : "https://\(host):\(port)"
        return KubeConnection(server: server, tls: try TrustMaterial.clientTLS(roots: TrustMaterial.certificates(pem: ca)), token: nil, tokenFile: directory + "/token")
    }

    public static func kubeconfig(path: String, context name: String? = nil) throws -> KubeConnection {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw CairnError(.invalid, "cannot read kubeconfig \(path): \(error.localizedDescription)", field: "kubeconfig")
        }
        let config: Kubeconfig
        do { config = try YAMLDecoder().decode(Kubeconfig.self, from: text) } catch {
            throw CairnError(.invalid, "\(path) is not a kubeconfig: \(error)", field: "kubeconfig")
        }
        let base = (path as NSString).deletingLastPathComponent
        func resolve(_ file: String) -> String { file.hasPrefix("/") ? file : (base as NSString).appendingPathComponent(file) }
        guard let contextName = name ?? config.currentContext, let context = config.contexts?.first(where: { $0.name == contextName })?.context else {
            throw CairnError(.invalid, "\(path): context \(name ?? config.currentContext ?? "(current-context unset)") not found", field: "context")
        }
        guard let cluster = config.clusters?.first(where: { $0.name == context.cluster })?.cluster else {
            throw CairnError(.invalid, "\(path): cluster \(context.cluster) not found", field: "kubeconfig")
        }
        let user = config.users?.first(where: { $0.name == context.user })?.user
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.shutdownTimeout = .milliseconds(250)
        if cluster.insecureSkipTLSVerify == true {
            tls.certificateVerification = .none
        } else if let data = cluster.certificateAuthorityData, let pem = Data(base64Encoded: data).map({ String(decoding: $0, as: UTF8.self) }) {
            tls.trustRoots = .certificates(try TrustMaterial.nioCertificates(TrustMaterial.certificates(pem: pem)))
        } else if let file = cluster.certificateAuthority {
            tls.trustRoots = .certificates(try TrustMaterial.nioCertificates(TrustMaterial.certificates(pem: String(contentsOfFile: resolve(file), encoding: .utf8))))
        }
        var certificatePEM = user?.clientCertificateData.flatMap { Data(base64Encoded: $0) }.map { String(decoding: $0, as: UTF8.self) }
        if certificatePEM == nil, let file = user?.clientCertificate { certificatePEM = try String(contentsOfFile: resolve(file), encoding: .utf8) }
        var keyPEM = user?.clientKeyData.flatMap { Data(base64Encoded: $0) }.map { String(decoding: $0, as: UTF8.self) }
        if keyPEM == nil, let file = user?.clientKey { keyPEM = try String(contentsOfFile: resolve(file), encoding: .utf8) }
        if let certificatePEM, let keyPEM {
            tls.certificateChain = try NIOSSLCertificate.fromPEMBytes(Array(certificatePEM.utf8)).map { .certificate($0) }
            tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(keyPEM.utf8), format: .pem))
        }
        return KubeConnection(server: cluster.server, tls: tls, token: user?.token, tokenFile: user?.tokenFile.map(resolve))
    }
}

/// The parts of a kubeconfig the agent reads.
struct Kubeconfig: Decodable {
    struct NamedCluster: Decodable { var name: String; var cluster: Cluster }
    struct Cluster: Decodable {
        var server: String
        var certificateAuthority: String?
        var certificateAuthorityData: String?
        var insecureSkipTLSVerify: Bool?
        enum CodingKeys: String, CodingKey {
            case server
            case certificateAuthority = "certificate-authority"
            case certificateAuthorityData = "certificate-authority-data"
            case insecureSkipTLSVerify = "insecure-skip-tls-verify"
        }
    }
    struct NamedUser: Decodable { var name: String; var user: User }
    struct User: Decodable {
        var token: String?
        var tokenFile: String?
        var clientCertificate: String?
        var clientCertificateData: String?
        var clientKey: String?
        var clientKeyData: String?
        enum CodingKeys: String, CodingKey {
            case token
            case tokenFile
            case clientCertificate = "client-certificate"
            case clientCertificateData = "client-certificate-data"
            case clientKey = "client-key"
            case clientKeyData = "client-key-data"
        }
    }
    struct NamedContext: Decodable { var name: String; var context: Context }
    struct Context: Decodable { var cluster: String; var user: String }

    var clusters: [NamedCluster]?
    var users: [NamedUser]?
    var contexts: [NamedContext]?
    var currentContext: String?
    enum CodingKeys: String, CodingKey {
        case clusters, users, contexts
        case currentContext = "current-context"
    }
}
