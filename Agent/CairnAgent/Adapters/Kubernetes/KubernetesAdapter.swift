import AsyncHTTPClient
import CairnCommon
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization

/// Applies manifests to a real cluster through its API server, over HTTPS, without client-go.
public final class KubernetesAdapter: ClusterAdapter, Sendable {
    public static let fieldManager = "cairn-agent"

    struct Resource: Sendable {
        var name: String
        var namespaced: Bool
    }

    let connection: KubeConnection
    let http: HTTPClient
    /// groupVersion → kind → resource, from discovery; refreshed when a kind is missing.
    private let discovered = Mutex<[String: [String: Resource]]>([:])
    /// "apiVersion/Kind" → the name of the CRD this agent applied that defines it.
    private let appliedDefinitions = Mutex<[String: String]>([:])
    /// How long a manifest waits for a CRD applied before it (in the same work or an earlier one) to be served.
    let establishTimeout: Duration

    let watches: KubeWatches

    public init(connection: KubeConnection, establishTimeout: Duration = .seconds(15), watchTimeoutSeconds: Int = 300) {
        self.connection = connection
        self.establishTimeout = establishTimeout
        var configuration = HTTPClient.Configuration()
        // The client retries refused connections until this lapses: a site whose API server is down should
        // hear so in seconds, not block a pass.
        configuration.timeout = .init(connect: .seconds(3))
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        watches = KubeWatches(connection: connection, timeoutSeconds: watchTimeoutSeconds)
    }

    public func shutdown() async {
        await watches.shutdown()
        try? await http.shutdown()
    }

    public func watch(_ keys: Set<ManifestKey>, changed: @escaping @Sendable () -> Void) async -> Bool {
        var collections = [String: Set<String>]()
        var resolved = true
        for key in keys {
            guard let resource = known(key) else {
                resolved = false
                continue
            }
            collections[collectionPath(key, resource), default: []].insert(key.name)
        }
        return watches.update(collections, changed: changed) && resolved
    }

    // MARK: ClusterAdapter

    public func apply(_ manifest: JSONValue, key: ManifestKey, strategy update: UpdateStrategy) async throws -> ApplyOutcome {
        let resource = try await resource(for: key)
        let path = self.path(key, resource)
        let strategy = update.type
        switch strategy {
        case .serverSideApply:
            var body = manifest
            body["status"] = nil
            if !update.ignoredPaths.isEmpty {
                // Fields another controller owns once they exist: left out, so the agent neither sets nor claims them.
                body = update.respectingIgnoredFields(body, live: try await get(key), keep: false)
            }
            let answer = try await send(
                .PATCH, path + "?fieldManager=\(Self.fieldManager)\(update.serverSideApply?.force == true ? "&force=true" : "")", body: try CairnJSON.encode(body),
                contentType: "application/apply-patch+yaml")
            if answer.status == 409 {
                let causes = answer.json?["details"]?["causes"]?.arrayValue?.compactMap { $0["field"]?.stringValue } ?? []
                throw AdapterError(reason: "ApplyConflict", message: "\(key): field manager conflict on \(causes.joined(separator: ", "))")
            }
            let live = try answer.expect([200, 201], "apply", key)
            remember(definition: manifest)
            return ApplyOutcome(uid: live["metadata"]?["uid"]?.stringValue, changed: true)
        case .createOnly, .readOnly:
            if let live = try await get(key) { return ApplyOutcome(uid: live["metadata"]?["uid"]?.stringValue, changed: false) }
            if strategy == .readOnly {
                throw AdapterError(reason: "NotFound", message: "\(key) does not exist and its update strategy is ReadOnly")
            }
            let answer = try await send(.POST, collectionPath(key, resource) + "?fieldManager=\(Self.fieldManager)", body: try CairnJSON.encode(manifest), contentType: "application/json")
            let live = try answer.expect([201], "create", key)
            return ApplyOutcome(uid: live["metadata"]?["uid"]?.stringValue, changed: true)
        case .update:
            for _ in 0..<3 {
                guard let live = try await get(key) else {
                    let answer = try await send(.POST, collectionPath(key, resource) + "?fieldManager=\(Self.fieldManager)", body: try CairnJSON.encode(manifest), contentType: "application/json")
                    let created = try answer.expect([201], "create", key)
                    return ApplyOutcome(uid: created["metadata"]?["uid"]?.stringValue, changed: true)
                }
                var body = update.respectingIgnoredFields(manifest, live: live, keep: true)
                body["metadata"]?["resourceVersion"] = live["metadata"]?["resourceVersion"]
                let answer = try await send(.PUT, path + "?fieldManager=\(Self.fieldManager)", body: try CairnJSON.encode(body), contentType: "application/json")
                if answer.status == 409 { continue }  // someone wrote in between: read again and retry
                let updated = try answer.expect([200], "update", key)
                return ApplyOutcome(uid: updated["metadata"]?["uid"]?.stringValue, changed: true)
            }
            throw AdapterError(reason: "UpdateConflict", message: "\(key) kept changing under the agent; will retry")
        }
    }

    public func get(_ key: ManifestKey) async throws -> JSONValue? {
        let resource = try await resource(for: key)
        let answer = try await send(.GET, path(key, resource), body: nil, contentType: nil)
        if answer.status == 404 {
            if answer.json == nil { invalidate(key) }  // a plain-text 404: the resource type itself is gone
            return nil
        }
        return try answer.expect([200], "get", key)
    }

    public func delete(_ key: ManifestKey, uid: String?, propagation: PropagationPolicy) async throws -> DeleteOutcome {
        let resource = try await resource(for: key)
        var options: JSONValue = ["kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": .string(propagation == .orphan ? "Orphan" : propagation.rawValue)]
        // Only ours: an object someone deleted and recreated has another UID, and the server refuses with 409.
        if let uid { options["preconditions"] = ["uid": .string(uid)] }
        let answer = try await send(.DELETE, path(key, resource), body: try CairnJSON.encode(options), contentType: "application/json")
        switch answer.status {
        case 404: return .alreadyGone
        case 409: return .notOurs
        default:
            _ = try answer.expect([200, 202], "delete", key)
            return .deleted
        }
    }

    /// The adapter keeps no list of its own: what it manages is the agent's inventory.
    public func objects() async throws -> [JSONValue] { [] }

    public func claims() async throws -> SiteClaims {
        let version = try await send(.GET, "/version", body: nil, contentType: nil).json
        let gitVersion = version?["gitVersion"]?.stringValue ?? "unknown"
        var platform = gitVersion.contains("k3s") ? "k3s" : "kubernetes"
        if let groups = try await send(.GET, "/apis", body: nil, contentType: nil).json?["groups"]?.arrayValue,
            groups.contains(where: { $0["name"]?.stringValue == "config.openshift.io" })
        {
            platform = "openshift"
        }
        var claims = [
            ClusterClaim(name: "platform", value: platform), ClusterClaim(name: "adapter", value: "kubernetes"),
            ClusterClaim(name: "kubernetes.version", value: gitVersion),
        ]
        // Nodes may be beyond a narrowed role: then the claims go without them rather than not at all.
        let nodes = try await send(.GET, "/api/v1/nodes", body: nil, contentType: nil)
        guard nodes.status == 200 else { return SiteClaims(claims: claims, allocatable: [:]) }
        var cpu = 0.0, memory = 0.0, ready = 0
        for node in nodes.json?["items"]?.arrayValue ?? [] {
            let isReady = node["status"]?["conditions"]?.arrayValue?.contains { $0["type"] == "Ready" && $0["status"] == "True" } ?? false
            guard isReady else { continue }
            ready += 1
            cpu += Quantity.parse(node["status"]?["allocatable"]?["cpu"]?.stringValue ?? "") ?? 0
            memory += Quantity.parse(node["status"]?["allocatable"]?["memory"]?.stringValue ?? "") ?? 0
        }
        claims.append(ClusterClaim(name: "nodes", value: String(ready)))
        return SiteClaims(claims: claims, allocatable: ["cpu": String(format: "%g", cpu), "memory": "\(Int(memory / 1_048_576))Mi"])
    }

    // MARK: Discovery

    static let aggregatedDiscovery = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"

    /// The resource serving a kind: from the cache, else from fresh discovery, else — when the kind comes from
    /// a CRD this agent applied and that is not yet Established — after waiting for it, within a bound.
    func resource(for key: ManifestKey) async throws -> Resource {
        if let found = known(key) { return found }
        try await discover(key)
        if let found = known(key) { return found }
        if let crd = appliedDefinitions.withLock({ $0["\(key.apiVersion)/\(key.kind)"] }) {
            try await waitEstablished(crd, for: key)
            if let found = known(key) { return found }
        }
        throw AdapterError(reason: "NoMatchingResource", message: "the API server serves no kind \(key.kind) in \(key.apiVersion) (is its CRD installed and established?)")
    }

    func known(_ key: ManifestKey) -> Resource? {
        discovered.withLock { $0[key.apiVersion]?[key.kind] }
    }

    /// Aggregated discovery (one request per root, every group at once) where the server offers it; the
    /// legacy per-group-version document otherwise.
    func discover(_ key: ManifestKey) async throws {
        var kinds = [String: [String: Resource]]()
        var aggregated = true
        for root in ["/api", "/apis"] {
            let answer = try await send(.GET, root, body: nil, contentType: nil, accept: Self.aggregatedDiscovery)
            if answer.status == 401 || answer.status == 403 { _ = try answer.expect([200], "discover the resources of", key) }
            guard answer.status == 200, answer.contentType.contains("as=APIGroupDiscoveryList"), let items = answer.json?["items"]?.arrayValue else {
                aggregated = false
                break
            }
            for group in items {
                let name = group["metadata"]?["name"]?.stringValue ?? ""
                for version in group["versions"]?.arrayValue ?? [] {
                    guard let versionName = version["version"]?.stringValue else { continue }
                    let groupVersion = name.isEmpty ? versionName : "\(name)/\(versionName)"
                    for entry in version["resources"]?.arrayValue ?? [] {
                        guard let resource = entry["resource"]?.stringValue, let kind = entry["responseKind"]?["kind"]?.stringValue else { continue }
                        kinds[groupVersion, default: [:]][kind] = Resource(name: resource, namespaced: entry["scope"]?.stringValue != "Cluster")
                    }
                }
            }
        }
        if aggregated {
            discovered.withLock { $0 = kinds }
            return
        }
        let path = key.group.isEmpty ? "/api/\(key.version)" : "/apis/\(key.apiVersion)"
        let answer = try await send(.GET, path, body: nil, contentType: nil)
        if answer.status == 401 || answer.status == 403 { _ = try answer.expect([200], "discover the resources of", key) }
        guard answer.status == 200, let list = answer.json?["resources"]?.arrayValue else { return }
        var found = [String: Resource]()
        for entry in list {
            guard let name = entry["name"]?.stringValue, !name.contains("/"), let kind = entry["kind"]?.stringValue else { continue }
            found[kind] = Resource(name: name, namespaced: entry["namespaced"]?.boolValue ?? true)
        }
        discovered.withLock { $0[key.apiVersion] = found }
    }

    /// Waits, up to `establishTimeout`, for a CRD to be Established and its kind served.
    func waitEstablished(_ crd: String, for key: ManifestKey) async throws {
        let definition = ManifestKey(apiVersion: "apiextensions.k8s.io/v1", kind: "CustomResourceDefinition", namespace: nil, name: crd)
        let deadline = ContinuousClock.now + establishTimeout
        var established = false
        while ContinuousClock.now < deadline {
            if !established, let live = try await get(definition) {
                established = live["status"]?["conditions"]?.arrayValue?.contains { $0["type"] == "Established" && $0["status"] == "True" } ?? false
            }
            if established {
                try await discover(key)
                if known(key) != nil { return }
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw AdapterError(
            reason: "CRDNotEstablished",
            message: "\(key.kind) in \(key.apiVersion) is not served yet: CustomResourceDefinition \(crd) is \(established ? "established but its kind is not served" : "not Established") after \(establishTimeout); will retry")
    }

    /// A CRD's kinds, so a custom resource that follows it can wait for it to be established.
    func remember(definition manifest: JSONValue) {
        guard manifest["kind"] == "CustomResourceDefinition", let name = manifest["metadata"]?["name"]?.stringValue,
            let spec = manifest["spec"], let group = spec["group"]?.stringValue, let kind = spec["names"]?["kind"]?.stringValue
        else { return }
        appliedDefinitions.withLock { definitions in
            for version in spec["versions"]?.arrayValue ?? [] {
                if let version = version["name"]?.stringValue { definitions["\(group)/\(version)/\(kind)"] = name }
            }
        }
    }

    func invalidate(_ key: ManifestKey) {
        discovered.withLock { $0[key.apiVersion] = nil }
    }

    func collectionPath(_ key: ManifestKey, _ resource: Resource) -> String {
        let base = key.group.isEmpty ? "/api/\(key.version)" : "/apis/\(key.apiVersion)"
        let scope = resource.namespaced ? "/namespaces/\(key.namespace ?? "default")" : ""
        return "\(base)\(scope)/\(resource.name)"
    }

    func path(_ key: ManifestKey, _ resource: Resource) -> String {
        collectionPath(key, resource) + "/" + key.name.pathSegment
    }

    // MARK: HTTP

    struct Answer {
        var status: Int
        var json: JSONValue?
        var text: String
        var contentType: String

        /// The body as an object when the status is one of `expected`; otherwise an error naming what was refused.
        func expect(_ expected: [Int], _ verb: String, _ key: ManifestKey) throws -> JSONValue {
            if expected.contains(status), let json { return json }
            let message = json?["message"]?.stringValue ?? text.trimmingCharacters(in: .whitespacesAndNewlines)
            switch status {
            case 401: throw AdapterError(reason: "Unauthorized", message: "the API server refused to \(verb) \(key): unauthorized (\(message))")
            case 403: throw AdapterError(reason: "Forbidden", message: "the API server forbids \(verb) on \(key): \(message)")
            case 422: throw AdapterError(reason: "Invalid", message: "\(key) is invalid: \(message)")
            default: throw AdapterError(reason: "ApplyFailed", message: "\(verb) \(key): the API server answered \(status): \(message)")
            }
        }
    }

    func send(_ method: HTTPMethod, _ path: String, body: Data?, contentType: String?, accept: String = "application/json") async throws -> Answer {
        var request = connection.request(method, path, accept: accept)
        if let body, let contentType {
            request.headers.add(name: "Content-Type", value: contentType)
            request.body = .bytes(body)
        }
        let response: HTTPClientResponse
        do {
            response = try await http.execute(request, timeout: .seconds(30))
        } catch {
            throw AdapterError(reason: AdapterError.unreachable, message: "the API server at \(connection.server) is unreachable: \(error)")
        }
        let buffer = try await response.body.collect(upTo: 64 * 1024 * 1024)
        let text = String(buffer: buffer)
        let type = response.headers.first(name: "Content-Type") ?? ""
        return Answer(
            status: Int(response.status.code), json: type.contains("json") ? try? CairnJSON.decode(JSONValue.self, from: Data(buffer.readableBytesView)) : nil,
            text: text, contentType: type)
    }
}
