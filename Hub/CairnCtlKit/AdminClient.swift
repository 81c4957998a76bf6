import AsyncHTTPClient
import CairnCommon
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL

/// An administrator's client for the hub API.
public struct AdminClient: Sendable {
    let http: HTTPClient
    let baseURL: String
    let token: String
    let tls: TLSConfiguration?
    /// How long a request keeps trying while the hub sheds it (503 or 429 with Retry-After): it is sent again
    /// after the wait the hub asks for, as long as that wait ends within this many seconds of the first try.
    /// Creating a token is never sent twice (a second try could make a second token); 0 never retries.
    public var retryWithin: Double = 60

    public init(http: HTTPClient, baseURL: String, token: String, tls: TLSConfiguration?) {
        self.http = http
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.token = token
        self.tls = tls
    }

    /// How cairnctl decides to trust the hub.
    public enum Trust: Sendable {
        /// The hub's CA certificate, from a file.
        case caFile(String)
        /// The SHA-256 fingerprint of the hub's CA, as `cairn-hub serve` prints it.
        case fingerprint(String)
    }

    /// Runs `body` with a client whose HTTP connections are closed afterwards.
    public static func with<T: Sendable>(hub: String, token: String, trust: Trust?, _ body: (AdminClient) async throws -> T) async throws -> T {
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        do {
            let tls = try await tlsConfiguration(hub: hub, trust: trust, http: http)
            let result = try await body(AdminClient(http: http, baseURL: hub, token: token, tls: tls))
            try await http.shutdown()
            return result
        } catch {
            try? await http.shutdown()
            throw error
        }
    }

    static func tlsConfiguration(hub: String, trust: Trust?, http: HTTPClient) async throws -> TLSConfiguration? {
        guard hub.lowercased().hasPrefix("https://") else { return nil }
        switch trust {
        case .caFile(let path):
            let pem: String
            do { pem = try String(contentsOfFile: path, encoding: .utf8) } catch {
                throw CairnError(.invalid, "cannot read the CA file \(path): \(error.localizedDescription)", field: "ca-file")
            }
            return try TrustMaterial.clientTLS(roots: try TrustMaterial.certificates(pem: pem))
        case .fingerprint(let fingerprint):
            var request = HTTPClientRequest(url: (hub.hasSuffix("/") ? String(hub.dropLast()) : hub) + "/api/v1/ca")
            request.tlsConfiguration = TrustMaterial.unverifiedTLS()
            let response: HTTPClientResponse
            do { response = try await http.execute(request, timeout: .seconds(30)) } catch {
                throw CairnError(.unavailable, "cannot reach the hub at \(hub): \(error)")
            }
            let body = try await response.body.collect(upTo: 1 << 20)
            let offered = try TrustMaterial.certificates(pem: String(buffer: body))
            return try TrustMaterial.clientTLS(roots: try TrustMaterial.pinned(offered, fingerprint: fingerprint))
        case nil:
            throw CairnError(
                .invalid, "the hub's CA is unknown: give --ca-file (the hub's pki/ca.pem) or --ca-fingerprint (printed by cairn-hub serve)",
                field: "ca-file")
        }
    }

    public func clusters() async throws -> [ManagedCluster] { try await get("clusters", ItemList<ManagedCluster>.self).items }
    public func cluster(_ name: String) async throws -> ManagedCluster { try await get("clusters/\(escape(name))", ManagedCluster.self) }
    public func approve(_ name: String, renew: Bool = false) async throws -> ManagedCluster {
        try await send(.POST, "clusters/\(escape(name))/approve\(renew ? "?renew=true" : "")", Optional<String>.none, retryable: true)
    }
    public func deny(_ name: String) async throws -> ManagedCluster {
        try await send(.POST, "clusters/\(escape(name))/deny", Optional<String>.none, retryable: true)
    }
    public func label(_ name: String, _ patch: LabelPatch) async throws -> ManagedCluster {
        try await send(.PATCH, "clusters/\(escape(name))/labels", patch)
    }
    public func releaseDeletions(_ name: String) async throws -> ManagedCluster {
        try await send(.POST, "clusters/\(escape(name))/release-deletions", Optional<String>.none, retryable: true)
    }
    public func removeCluster(_ name: String) async throws {
        let _: Empty = try await send(.DELETE, "clusters/\(escape(name))", Optional<String>.none)
    }

    public func works(cluster: String?) async throws -> [ManifestWork] {
        if let cluster { return try await get("clusters/\(escape(cluster))/works", ItemList<ManifestWork>.self).items }
        return try await get("works", ItemList<ManifestWork>.self).items
    }
    public func work(_ name: String, cluster: String) async throws -> ManifestWork {
        try await get("clusters/\(escape(cluster))/works/\(escape(name))", ManifestWork.self)
    }
    public func apply(_ work: ManifestWork, cluster: String) async throws -> ManifestWork {
        try await send(.PUT, "clusters/\(escape(cluster))/works/\(escape(work.name))", work)
    }
    public func deleteWork(_ name: String, cluster: String) async throws -> ManifestWork {
        try await send(.DELETE, "clusters/\(escape(cluster))/works/\(escape(name))", Optional<String>.none)
    }

    public func applyPlacement(_ placement: Placement) async throws -> Placement {
        try await send(.PUT, "placements/\(escape(placement.name))", placement)
    }
    public func placement(_ name: String) async throws -> Placement { try await get("placements/\(escape(name))", Placement.self) }
    public func placements() async throws -> [Placement] { try await get("placements", ItemList<Placement>.self).items }
    public func deletePlacement(_ name: String) async throws {
        let _: Empty = try await send(.DELETE, "placements/\(escape(name))", Optional<String>.none)
    }
    public func events(for object: String?, limit: Int = 100) async throws -> [Event] {
        let query = object.map { "&for=\($0.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? $0)" } ?? ""
        return try await get("events?limit=\(limit)\(query)", ItemList<Event>.self).items
    }
    public func taint(_ cluster: String, _ taint: Taint) async throws -> ManagedCluster {
        try await send(.PUT, "clusters/\(escape(cluster))/taints/\(escape(taint.key))", taint)
    }
    public func untaint(_ cluster: String, key: String) async throws -> ManagedCluster {
        try await send(.DELETE, "clusters/\(escape(cluster))/taints/\(escape(key))", Optional<String>.none)
    }

    public func applyWorkSet(_ workSet: WorkSet) async throws -> WorkSet {
        try await send(.PUT, "worksets/\(escape(workSet.name))", workSet)
    }
    public func workSet(_ name: String) async throws -> WorkSet { try await get("worksets/\(escape(name))", WorkSet.self) }
    public func workSets() async throws -> [WorkSet] { try await get("worksets", ItemList<WorkSet>.self).items }
    public func deleteWorkSet(_ name: String) async throws {
        let _: Empty = try await send(.DELETE, "worksets/\(escape(name))", Optional<String>.none)
    }

    public func audit(limit: Int) async throws -> [AuditEntry] { try await get("audit?limit=\(limit)", ItemList<AuditEntry>.self).items }

    public func createToken(_ request: TokenRequest) async throws -> EnrolmentToken { try await send(.POST, "tokens", request) }
    public func tokens() async throws -> [EnrolmentToken] { try await get("tokens", ItemList<EnrolmentToken>.self).items }
    public func revokeToken(_ id: String) async throws -> EnrolmentToken { try await send(.DELETE, "tokens/\(escape(id))", Optional<String>.none) }

    struct Empty: Decodable {}

    func escape(_ segment: String) -> String { segment.pathSegment }

    func get<T: Decodable>(_ path: String, _ type: T.Type) async throws -> T {
        try await send(.GET, path, Optional<String>.none)
    }

    /// Sends a request; one the hub sheds is sent again as `retryWithin` allows. Every method but POST is
    /// idempotent here; a POST that is (a state transition such as approve) says so with `retryable`.
    func send<Body: Encodable, T: Decodable>(_ method: HTTPMethod, _ path: String, _ body: Body?, retryable: Bool? = nil) async throws -> T {
        var request = HTTPClientRequest(url: "\(baseURL)/api/v1/\(path)")
        request.method = method
        request.tlsConfiguration = tls
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(try CairnJSON.encode(body))
        }
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds((retryable ?? (method != .POST)) ? retryWithin : 0)
        while true {
            let response: HTTPClientResponse
            do {
                response = try await http.execute(request, timeout: .seconds(60))
            } catch {
                throw CairnError(.unavailable, "cannot reach the hub at \(baseURL): \(error)")
            }
            let data = try await response.body.collect(upTo: 256 * 1024 * 1024)
            if (200..<300).contains(response.status.code) {
                if let empty = Empty() as? T { return empty }
                return try CairnJSON.decode(T.self, from: Data(data.readableBytesView), what: "hub answer")
            }
            if [429, 503].contains(response.status.code), let wait = response.headers.first(name: "Retry-After").flatMap(Int.init), wait > 0,
                clock.now + .seconds(wait) <= deadline
            {
                try await Task.sleep(for: .seconds(wait))
                continue
            }
            if let body = try? CairnJSON.decode(CairnError.Body.self, from: Data(data.readableBytesView)) { throw body.error }
            throw CairnError(.internal, "hub answered \(response.status)")
        }
    }
}
