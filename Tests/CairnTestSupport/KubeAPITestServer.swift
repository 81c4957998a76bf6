import CairnCommon
import CairnHub
import Foundation
import Hummingbird
import HummingbirdTLS
import Logging
import ServiceLifecycle
import Synchronization

/// A Kubernetes API server for the adapter's tests that answers as the recorded v1.36 server in
/// ../shared/kubernetes-api does: discovery documents, server-side apply with field managers and conflicts,
/// Status bodies, plain-text 404 for unknown resources, resourceVersion checks, UID preconditions, foreground
/// deletion through a finalizer, CRDs that become served once established, and Deployment status as its
/// controller would set it.
public final class KubeAPITestServer: Sendable {
    struct Object: Sendable {
        var body: JSONValue
        /// Field paths (like `.spec.replicas`) each manager set.
        var managers: [String: Set<String>]
    }

    struct State: Sendable {
        var objects: [String: Object] = [:]
        /// groupVersion → [resource list entries] beyond the recorded ones (from CRDs).
        var extraResources: [String: [JSONValue]] = [:]
        var resourceVersion = 1000
        var tokens: Set<String> = []
        var nodes: [JSONValue] = []
        var requests: [String] = []
    }

    let state = Mutex(State())
    let recorded: [String: JSONValue]
    let group: ServiceGroup
    let task: Task<Void, any Error>
    public let port: Int
    public let caPEM: String
    public var url: String { "https://127.0.0.1:\(port)" }

    public init(directory: String, token: String) async throws {
        var recorded = [String: JSONValue]()
        let samples = URL(fileURLWithPath: Corpus.root).deletingLastPathComponent().appendingPathComponent("kubernetes-api").path
        for (name, file) in [("/version", "01-version.json"), ("/apis", "03-apis-grouplist.json"), ("/api/v1", "04-api-v1-resources.json"), ("/apis/apps/v1", "05-apis-apps-v1-resources.json"), ("/apis/networking.k8s.io/v1", "06-apis-networking-v1-resources.json")] {
            let exchange = try CairnJSON.decode(JSONValue.self, from: Data(contentsOf: URL(fileURLWithPath: samples + "/" + file)))
            recorded[name] = exchange["response"]?["body"]
        }
        // apiextensions is served too, so CRDs can be applied.
        recorded["/apis/apiextensions.k8s.io/v1"] = ["kind": "APIResourceList", "groupVersion": "apiextensions.k8s.io/v1", "resources": [["name": "customresourcedefinitions", "namespaced": false, "kind": "CustomResourceDefinition"]]]
        self.recorded = recorded
        state.withLock { $0.tokens = [token] }
        let pki = try HubPKI.loadOrCreate(directory: directory, names: ["127.0.0.1", "localhost"])
        caPEM = pki.caPEM
        var logger = Logger(label: "kube-api-test")
        logger.logLevel = .warning
        let router = Router()
        let reference = ServerReference()
        router.addMiddleware { KubeHandler(reference: reference) }
        let (stream, continuation) = AsyncStream.makeStream(of: Int.self)
        let app = Application(
            router: router, server: try .tls(.http1(), tlsConfiguration: pki.serverTLS()),
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { continuation.yield($0.localAddress?.port ?? 0) }, logger: logger)
        group = ServiceGroup(configuration: .init(services: [app], logger: logger))
        let group = self.group
        task = Task { try await group.run() }
        var bound = 0
        for await value in stream {
            bound = value
            break
        }
        port = bound
        reference.server.withLock { $0 = self }
    }

    public func stop() async throws {
        await group.triggerGracefulShutdown()
        try await task.value
    }

    // MARK: What tests change behind the adapter's back

    public func setTokens(_ tokens: Set<String>) { state.withLock { $0.tokens = tokens } }
    public func addNode(cpu: String, memory: String, ready: Bool = true) {
        state.withLock {
            $0.nodes.append(["metadata": ["name": .string("node-\($0.nodes.count)")], "status": ["allocatable": ["cpu": .string(cpu), "memory": .string(memory)], "conditions": [["type": "Ready", "status": .string(ready ? "True" : "False")]]]])
        }
    }
    /// The live object at an API path, as the server holds it.
    public func object(_ path: String) -> JSONValue? { state.withLock { $0.objects[path]?.body } }
    /// Another field manager applies (as kubectl or a controller would).
    public func apply(_ path: String, as manager: String, _ change: @Sendable (inout JSONValue) -> Void) {
        state.withLock { state in
            guard var object = state.objects[path] else { return }
            let before = Self.leaves(object.body)
            change(&object.body)
            let changed = Self.leaves(object.body).filter { before[$0.key] != $0.value }.keys
            for field in changed {
                for other in object.managers.keys { object.managers[other]?.remove(field) }
                object.managers[manager, default: []].insert(field)
            }
            state.resourceVersion += 1
            object.body["metadata"]?["resourceVersion"] = .string(String(state.resourceVersion))
            state.objects[path] = object
        }
    }
    public func remove(_ path: String) { _ = state.withLock { $0.objects.removeValue(forKey: path) } }
    public var requests: [String] { state.withLock { $0.requests } }

    // MARK: Behaviour

    func handle(method: String, path: String, query: [String: String], authorization: String?, body: Data) -> (Int, String, Data) {
        state.withLock { state in
            state.requests.append("\(method) \(path)")
            guard let authorization, authorization.hasPrefix("Bearer "), state.tokens.contains(String(authorization.dropFirst(7))) else {
                return Self.status(401, "Unauthorized", "Unauthorized")
            }
            if method == "GET", let document = recorded[path] ?? state.extraResources[Self.groupVersion(path) ?? ""].map({ ["kind": "APIResourceList", "groupVersion": .string(Self.groupVersion(path)!), "resources": .array($0)] }) {
                var document = document
                if path == "/apis" {
                    var groups = document["groups"]?.arrayValue ?? []
                    for groupVersion in state.extraResources.keys {
                        groups.append(["name": .string(String(groupVersion.split(separator: "/")[0])), "versions": [["groupVersion": .string(groupVersion)]]])
                    }
                    document["groups"] = .array(groups)
                }
                return (200, "application/json", (try? CairnJSON.encode(document)) ?? Data())
            }
            if method == "GET" && path == "/api/v1/nodes" {
                return (200, "application/json", (try? CairnJSON.encode(["kind": "NodeList", "apiVersion": "v1", "items": .array(state.nodes)] as JSONValue)) ?? Data())
            }
            guard let target = resolve(path, state: state) else { return (404, "text/plain; charset=utf-8", Data("404 page not found\n".utf8)) }
            switch method {
            case "GET":
                guard let object = state.objects[path] else { return Self.status(404, "NotFound", "\(target.resource) \"\(target.name ?? "")\" not found") }
                return Self.json(200, object.body)
            case "PATCH":
                guard let manifest = try? CairnJSON.decode(JSONValue.self, from: body) else { return Self.status(400, "BadRequest", "invalid apply patch") }
                let manager = query["fieldManager"] ?? "unknown"
                let force = query["force"] == "true"
                let leaves = Self.leaves(manifest)
                if var object = state.objects[path] {
                    let live = Self.leaves(object.body)
                    let conflicts = leaves.filter { field, value in
                        live[field] != nil && live[field] != value && object.managers.contains { $0.key != manager && $0.value.contains(field) }
                    }.keys.sorted()
                    if !conflicts.isEmpty && !force {
                        let owner = object.managers.first { $0.key != manager && !$0.value.isDisjoint(with: conflicts) }?.key ?? "other"
                        var status = Self.statusBody(409, "Conflict", "Apply failed with \(conflicts.count) conflict: conflict with \"\(owner)\": \(conflicts.joined(separator: ", "))")
                        status["details"] = ["causes": .array(conflicts.map { ["reason": "FieldManagerConflict", "message": .string("conflict with \"\(owner)\""), "field": .string($0)] })]
                        return Self.json(409, status)
                    }
                    for field in leaves.keys {
                        for other in object.managers.keys where other != manager { object.managers[other]?.remove(field) }
                    }
                    object.managers[manager] = Set(leaves.keys)
                    let specChanged = object.body["spec"] != manifest["spec"]
                    object.body = Self.merge(object.body, manifest)
                    if specChanged {
                        let generation = object.body["metadata"]?["generation"]?.intValue ?? 1
                        object.body["metadata"]?["generation"] = .int(generation + 1)
                    }
                    state.resourceVersion += 1
                    object.body["metadata"]?["resourceVersion"] = .string(String(state.resourceVersion))
                    object.body = Self.controllerStatus(object.body)
                    state.objects[path] = object
                    return Self.json(200, object.body)
                }
                let created = create(manifest, manager: manager, state: &state)
                state.objects[path] = created
                register(created.body, state: &state)
                return Self.json(201, created.body)
            case "POST":
                guard let manifest = try? CairnJSON.decode(JSONValue.self, from: body), let name = manifest["metadata"]?["name"]?.stringValue else {
                    return Self.status(400, "BadRequest", "invalid body")
                }
                let objectPath = path + "/" + name
                if state.objects[objectPath] != nil { return Self.status(409, "AlreadyExists", "\(target.resource) \"\(name)\" already exists") }
                let created = create(manifest, manager: query["fieldManager"] ?? "unknown", state: &state)
                state.objects[objectPath] = created
                register(created.body, state: &state)
                return Self.json(201, created.body)
            case "PUT":
                guard var object = state.objects[path], let manifest = try? CairnJSON.decode(JSONValue.self, from: body) else {
                    return Self.status(404, "NotFound", "\(target.resource) \"\(target.name ?? "")\" not found")
                }
                guard manifest["metadata"]?["resourceVersion"] == object.body["metadata"]?["resourceVersion"] else {
                    return Self.status(409, "Conflict", "Operation cannot be fulfilled on \(target.resource) \"\(target.name ?? "")\": the object has been modified; please apply your changes to the latest version and try again")
                }
                let specChanged = object.body["spec"] != manifest["spec"]
                var replaced = manifest
                replaced["metadata"]?["uid"] = object.body["metadata"]?["uid"]
                replaced["metadata"]?["generation"] = .int((object.body["metadata"]?["generation"]?.intValue ?? 1) + (specChanged ? 1 : 0))
                state.resourceVersion += 1
                replaced["metadata"]?["resourceVersion"] = .string(String(state.resourceVersion))
                object.body = Self.controllerStatus(replaced)
                state.objects[path] = object
                return Self.json(200, object.body)
            case "DELETE":
                guard var object = state.objects[path] else { return Self.status(404, "NotFound", "\(target.resource) \"\(target.name ?? "")\" not found") }
                let options = try? CairnJSON.decode(JSONValue.self, from: body)
                if let uid = options?["preconditions"]?["uid"]?.stringValue, uid != object.body["metadata"]?["uid"]?.stringValue {
                    return Self.status(409, "Conflict", "Precondition failed: UID in precondition: \(uid), UID in object meta: \(object.body["metadata"]?["uid"]?.stringValue ?? "")")
                }
                if options?["propagationPolicy"] == "Foreground" {
                    object.body["metadata"]?["deletionTimestamp"] = .string(RFC3339.string(from: Date()))
                    object.body["metadata"]?["finalizers"] = ["foregroundDeletion"]
                    // The garbage collector finishes shortly after; the object stays visible until then.
                    state.objects[path] = object
                    let response = object.body
                    Task { [weak self] in
                        try? await Task.sleep(for: .milliseconds(100))
                        self?.remove(path)
                    }
                    return Self.json(200, response)
                }
                state.objects[path] = nil
                return Self.json(200, object.body)
            default:
                return Self.status(405, "MethodNotAllowed", "method not allowed")
            }
        }
    }

    /// Which resource a path names, if the server serves it.
    func resolve(_ path: String, state: State) -> (resource: String, name: String?)? {
        var parts = path.split(separator: "/").map(String.init)
        let groupVersion: String
        if parts.first == "api", parts.count >= 2 {
            groupVersion = "/api/" + parts[1]
            parts.removeFirst(2)
        } else if parts.first == "apis", parts.count >= 3 {
            groupVersion = "/apis/\(parts[1])/\(parts[2])"
            parts.removeFirst(3)
        } else {
            return nil
        }
        if parts.first == "namespaces", parts.count >= 3 { parts.removeFirst(2) }
        guard let resource = parts.first else { return nil }
        let served = (recorded[groupVersion]?["resources"]?.arrayValue ?? []) + (state.extraResources[Self.groupVersion(groupVersion) ?? ""] ?? [])
        guard served.contains(where: { $0["name"]?.stringValue == resource }) else { return nil }
        return (resource, parts.count > 1 ? parts[1] : nil)
    }

    func create(_ manifest: JSONValue, manager: String, state: inout State) -> Object {
        var body = manifest
        state.resourceVersion += 1
        body["metadata"]?["uid"] = .string(UUID().uuidString.lowercased())
        body["metadata"]?["resourceVersion"] = .string(String(state.resourceVersion))
        body["metadata"]?["generation"] = 1
        body["metadata"]?["creationTimestamp"] = .string(RFC3339.string(from: Date()))
        body["metadata"]?["managedFields"] = [["manager": .string(manager), "operation": "Apply"]]
        return Object(body: Self.controllerStatus(body), managers: [manager: Set(Self.leaves(manifest).keys)])
    }

    /// An applied CRD is established at once and its resource served.
    func register(_ object: JSONValue, state: inout State) {
        guard object["kind"] == "CustomResourceDefinition", let spec = object["spec"], let group = spec["group"]?.stringValue,
            let plural = spec["names"]?["plural"]?.stringValue, let kind = spec["names"]?["kind"]?.stringValue
        else { return }
        for version in spec["versions"]?.arrayValue ?? [] {
            guard let name = version["name"]?.stringValue else { continue }
            state.extraResources["\(group)/\(name)", default: []].append(["name": .string(plural), "namespaced": .bool(spec["scope"] != "Cluster"), "kind": .string(kind)])
        }
    }

    static func groupVersion(_ path: String) -> String? {
        let parts = path.split(separator: "/")
        guard parts.first == "apis", parts.count == 3 else { return nil }
        return "\(parts[1])/\(parts[2])"
    }

    /// What a Deployment controller would report: every replica updated and available at this generation.
    static func controllerStatus(_ body: JSONValue) -> JSONValue {
        var body = body
        if body["kind"] == "Deployment" || body["kind"] == "StatefulSet" {
            let replicas = body["spec"]?["replicas"]?.intValue ?? 1
            body["status"] = ["observedGeneration": body["metadata"]?["generation"] ?? 1, "replicas": .int(replicas), "readyReplicas": .int(replicas), "availableReplicas": .int(replicas), "updatedReplicas": .int(replicas)]
        }
        if body["kind"] == "CustomResourceDefinition" {
            body["status"] = ["conditions": [["type": "Established", "status": "True"]]]
        }
        return body
    }

    /// Leaf field paths (`.spec.replicas`) and their values, lists taken whole; metadata bookkeeping left out.
    static func leaves(_ value: JSONValue, prefix: String = "") -> [String: JSONValue] {
        guard case .object(let fields) = value else { return [prefix: value] }
        var result = [String: JSONValue]()
        for (key, field) in fields where !(prefix == "" && (key == "status" || key == "apiVersion" || key == "kind")) {
            if prefix == ".metadata" && !["labels", "annotations"].contains(key) { continue }
            result.merge(leaves(field, prefix: "\(prefix).\(key)")) { first, _ in first }
        }
        return result
    }

    static func merge(_ base: JSONValue, _ patch: JSONValue) -> JSONValue {
        guard case .object(var fields) = base, case .object(let changes) = patch else { return patch }
        for (key, value) in changes { fields[key] = fields[key].map { merge($0, value) } ?? value }
        return .object(fields)
    }

    static func statusBody(_ code: Int, _ reason: String, _ message: String) -> JSONValue {
        ["kind": "Status", "apiVersion": "v1", "metadata": [:], "status": "Failure", "message": .string(message), "reason": .string(reason), "code": .int(Int64(code))]
    }

    static func status(_ code: Int, _ reason: String, _ message: String) -> (Int, String, Data) {
        json(code, statusBody(code, reason, message))
    }

    static func json(_ code: Int, _ body: JSONValue) -> (Int, String, Data) {
        (code, "application/json", (try? CairnJSON.encode(body)) ?? Data())
    }
}

/// Filled in once the server is up; requests cannot arrive before a test knows the port.
final class ServerReference: Sendable {
    let server = Mutex<KubeAPITestServer?>(nil)
}

/// Routes every request to the test server's behaviour.
struct KubeHandler: RouterMiddleware {
    typealias Context = BasicRequestContext
    let reference: ServerReference

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let server = reference.server.withLock({ $0 }) else { return Response(status: .serviceUnavailable) }
        let body = try await request.body.collect(upTo: 64 * 1024 * 1024)
        var query = [String: String]()
        for (key, value) in request.uri.queryParameters { query[String(key)] = String(value) }
        let (status, contentType, data) = server.handle(
            method: request.method.rawValue, path: request.uri.path, query: query, authorization: request.headers[.authorization],
            body: Data(body.readableBytesView))
        return Response(status: .init(code: status), headers: [.contentType: contentType], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
