import CairnCommon
import CairnHub
import Foundation
import Hummingbird
import HummingbirdTLS
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// A Kubernetes API server for the adapter's tests that answers as the recorded v1.36 server in
/// ../shared/kubernetes-api does: legacy and aggregated discovery, server-side apply with field managers and
/// conflicts, Status bodies, plain-text 404 for unknown resources, resourceVersion checks, UID preconditions,
/// foreground deletion through a finalizer, CRDs that are served only once Established (a moment after they
/// are created), watch streams of newline-delimited events with bookmarks, and workload status as the
/// controllers would set it. It can be stopped and started again on the same port with the same contents.
public final class KubeAPITestServer: Sendable {
    struct Object: Sendable {
        var body: JSONValue
        /// Field paths (like `.spec.replicas`) each manager set.
        var managers: [String: Set<String>]
    }

    struct State: Sendable {
        var objects: [String: Object] = [:]
        /// API path of a group version (`/apis/example.com/v1`) → resource list entries from established CRDs.
        var extraResources: [String: [JSONValue]] = [:]
        var resourceVersion = 1000
        var tokens: Set<String> = []
        var nodes: [JSONValue] = []
        var requests: [String] = []
        var aggregatedDiscovery = true
        /// How long a created CRD takes to be established; nil holds it until `establishHeld()`.
        var establishDelay: Duration? = .milliseconds(300)
        var heldCRDs: [String] = []
        var controllersPaused = false
        var watchesFail = false
        /// Set by stop(): no new watch is opened, so graceful shutdown has nothing long-lived to wait for.
        var stopping = false
    }

    struct Watcher: Sendable {
        var collection: String
        var continuation: AsyncStream<Data>.Continuation
    }

    static let aggregatedAPIs = "aggregated:/apis"
    static let aggregatedContentType = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"

    let state = Mutex(State())
    let watchers = Mutex<[UUID: Watcher]>([:])
    let recorded: [String: JSONValue]
    /// API path of a group version → its resources, from the recordings.
    let served: [String: [JSONValue]]
    let running: RunningService
    public var port: Int { running.port }
    public let caPEM: String
    public var url: String { "https://127.0.0.1:\(port)" }

    /// A server on `port` (0: any free one); `previous`, if given and stopped, hands over its objects and settings,
    /// as a restarted API server finds its etcd.
    public init(directory: String, token: String, port: Int = 0, takingOver previous: KubeAPITestServer? = nil) async throws {
        var recorded = [String: JSONValue]()
        var served = [String: [JSONValue]]()
        let samples = URL(fileURLWithPath: Corpus.root).deletingLastPathComponent().appendingPathComponent("kubernetes-api").path
        func sample(_ file: String) throws -> JSONValue {
            try CairnJSON.decode(JSONValue.self, from: Data(contentsOf: URL(fileURLWithPath: samples + "/" + file)))["response"]?["body"] ?? .null
        }
        for (name, file) in [("/version", "01-version.json"), ("/apis", "03-apis-grouplist.json")] {
            recorded[name] = try sample(file)
        }
        // Every group the recorded server offered in aggregated discovery is served here too, except the
        // recording's own custom resources: this server starts with no CRDs.
        var aggregated = try sample("07-aggregated-discovery-apis.json")
        let groups = (aggregated["items"]?.arrayValue ?? []).filter { $0["metadata"]?["name"] != "example.com" }
        aggregated["items"] = .array(groups)
        recorded[Self.aggregatedAPIs] = aggregated
        for group in groups {
            for version in group["versions"]?.arrayValue ?? [] {
                let path = "/apis/\(group["metadata"]?["name"]?.stringValue ?? "")/\(version["version"]?.stringValue ?? "")"
                served[path] = (version["resources"]?.arrayValue ?? []).map(Self.legacyEntry)
            }
        }
        // The legacy documents are served exactly as recorded where there is a recording.
        for (name, file) in [("/api/v1", "04-api-v1-resources.json"), ("/apis/apps/v1", "05-apis-apps-v1-resources.json"), ("/apis/networking.k8s.io/v1", "06-apis-networking-v1-resources.json")] {
            served[name] = try sample(file)["resources"]?.arrayValue ?? []
        }
        self.served = served
        self.recorded = recorded
        if let previous {
            let handed = previous.state.withLock { $0 }
            state.withLock { $0 = handed }
            state.withLock {
                $0.requests = []
                $0.stopping = false
            }
        } else {
            state.withLock { $0.tokens = [token] }
        }
        let pki = try HubPKI.loadOrCreate(directory: directory, names: ["127.0.0.1", "localhost"])
        caPEM = pki.caPEM
        var logger = Logger(label: "kube-api-test")
        logger.logLevel = .critical
        let router = Router()
        let reference = ServerReference()
        router.addMiddleware { KubeHandler(reference: reference) }
        running = try await RunningService.start(logger: logger) { bound in
            // Not Hummingbird's Application: its date cache can deadlock an event loop this process shares.
            HubApplication(
                responder: router.buildResponder(), server: try .tls(.http1(), tlsConfiguration: pki.serverTLS()),
                address: .hostname("127.0.0.1", port: port), serverName: "kube-api-test",
                onServerRunning: { bound($0.localAddress?.port ?? 0) }, logger: logger)
        }
        reference.server.withLock { $0 = self }
    }

    public func stop() async throws {
        state.withLock { $0.stopping = true }
        for watcher in watchers.withLock({ $0.values }) { watcher.continuation.finish() }
        try await running.stop()
    }

    /// Writes a kubeconfig for this server to `path` and returns the path: `user` is the user entry as a YAML
    /// flow mapping (`{token: t}`), `cluster` the cluster's fields besides its server (default: the CA inline).
    @discardableResult
    public func writeKubeconfig(to path: String, user: String, cluster: String? = nil) throws -> String {
        let fields = cluster ?? "certificate-authority-data: \(Data(caPEM.utf8).base64EncodedString())"
        try """
            apiVersion: v1
            kind: Config
            current-context: c
            clusters: [{name: c, cluster: {server: "\(url)"\(fields.isEmpty ? "" : ", " + fields)}}]
            users: [{name: u, user: \(user)}]
            contexts: [{name: c, context: {cluster: c, user: u}}]
            """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    // MARK: What tests change behind the adapter's back

    public func setTokens(_ tokens: Set<String>) { state.withLock { $0.tokens = tokens } }
    /// Legacy discovery only, as servers before v1.27 (or proxies that strip it) offer.
    public func setAggregatedDiscovery(_ on: Bool) { state.withLock { $0.aggregatedDiscovery = on } }
    /// CRDs created from now on stay unestablished until `establishHeld()`: a test decides the moment, whatever
    /// the machine's speed.
    public func holdEstablishment() { state.withLock { $0.establishDelay = nil } }
    /// Establishes every CRD held so far.
    public func establishHeld() {
        for path in state.withLock({ state in defer { state.heldCRDs = [] }; return state.heldCRDs }) { establish(path) }
    }
    /// With controllers paused, workloads get no status until a test sets one.
    public func setControllersPaused(_ paused: Bool) { state.withLock { $0.controllersPaused = paused } }
    /// Watches answer 500 (and open ones end) while set.
    public func setWatchesFail(_ fail: Bool) {
        state.withLock { $0.watchesFail = fail }
        if fail {
            for watcher in watchers.withLock({ $0.values }) { watcher.continuation.finish() }
        }
    }
    public var openWatches: Int { watchers.withLock { $0.count } }

    public func addNode(cpu: String, memory: String, ready: Bool = true) {
        state.withLock {
            $0.nodes.append(["metadata": ["name": .string("node-\($0.nodes.count)")], "status": ["allocatable": ["cpu": .string(cpu), "memory": .string(memory)], "conditions": [["type": "Ready", "status": .string(ready ? "True" : "False")]]]])
        }
    }
    /// The live object at an API path, as the server holds it.
    public func object(_ path: String) -> JSONValue? { state.withLock { $0.objects[path]?.body } }
    /// Another field manager applies (as kubectl or a controller would).
    public func apply(_ path: String, as manager: String, _ change: @Sendable (inout JSONValue) -> Void) {
        let event: JSONValue? = state.withLock { state in
            guard var object = state.objects[path] else { return nil }
            let before = Self.leaves(object.body)
            change(&object.body)
            let changed = Self.leaves(object.body).filter { before[$0.key] != $0.value }.keys
            for field in changed {
                for other in object.managers.keys { object.managers[other]?.remove(field) }
                object.managers[manager, default: []].insert(field)
            }
            state.resourceVersion += 1
            object.body["metadata"]?["resourceVersion"] = .string(String(state.resourceVersion))
            // The controllers react to a spec change (a status someone sets is kept as set).
            if changed.contains(where: { $0.hasPrefix(".spec") }) {
                let generation = object.body["metadata"]?["generation"]?.intValue ?? 1
                object.body["metadata"]?["generation"] = .int(generation + 1)
                object.body = Self.controllerStatus(object.body, paused: state.controllersPaused)
            }
            state.objects[path] = object
            return object.body
        }
        if let event { emit("MODIFIED", event, path: path) }
    }
    public func remove(_ path: String) {
        if let gone = state.withLock({ $0.objects.removeValue(forKey: path) }) { emit("DELETED", gone.body, path: path) }
    }
    public var requests: [String] { state.withLock { $0.requests } }

    // MARK: Behaviour

    enum Reply {
        case full((Int, String, Data))
        case watch(AsyncStream<Data>)
    }

    func handle(method: String, path: String, query: [String: String], accept: String?, authorization: String?, body: Data) -> Reply {
        var events = [(String, JSONValue, String)]()
        let reply: Reply = state.withLock { state in
            state.requests.append(query["watch"] != nil ? "WATCH \(path)" : "\(method) \(path)")
            guard let authorization, authorization.hasPrefix("Bearer "), state.tokens.contains(String(authorization.dropFirst(7))) else {
                return .full(Self.status(401, "Unauthorized", "Unauthorized"))
            }
            if method == "GET", let document = discovery(path, accept: accept, state: state) { return .full(document) }
            if method == "GET" && path == "/api/v1/nodes" {
                return .full(Self.json(200, ["kind": "NodeList", "apiVersion": "v1", "items": .array(state.nodes)]))
            }
            guard let target = resolve(path, state: state) else { return .full((404, "text/plain; charset=utf-8", Data("404 page not found\n".utf8))) }
            switch method {
            case "GET" where query["watch"] == "1" || query["watch"] == "true":
                if state.watchesFail { return .full(Self.status(500, "InternalError", "watch chan error: etcd watch closed")) }
                if state.stopping { return .full(Self.status(503, "ServiceUnavailable", "the server is shutting down")) }
                return .watch(watch(path, query: query, state: state))
            case "GET":
                guard target.name != nil else {
                    let items = state.objects.filter { ($0.key as NSString).deletingLastPathComponent == path }.map(\.value.body)
                    return .full(Self.json(200, ["kind": "List", "apiVersion": "v1", "metadata": ["resourceVersion": .string(String(state.resourceVersion))], "items": .array(items)]))
                }
                guard let object = state.objects[path] else { return .full(Self.status(404, "NotFound", "\(target.resource) \"\(target.name ?? "")\" not found")) }
                return .full(Self.json(200, object.body))
            case "PATCH":
                guard let manifest = try? CairnJSON.decode(JSONValue.self, from: body) else { return .full(Self.status(400, "BadRequest", "invalid apply patch")) }
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
                        return .full(Self.json(409, status))
                    }
                    // Fields this manager set before and no longer sets are removed unless another manager owns them.
                    var body = object.body
                    for field in (object.managers[manager] ?? []).subtracting(leaves.keys)
                    where !object.managers.contains(where: { $0.key != manager && $0.value.contains(field) }) {
                        body = Self.removing(field, from: body)
                    }
                    for field in leaves.keys {
                        for other in object.managers.keys where other != manager { object.managers[other]?.remove(field) }
                    }
                    object.managers[manager] = Set(leaves.keys)
                    body = Self.merge(body, manifest)
                    if object.body["spec"] != body["spec"] {
                        let generation = object.body["metadata"]?["generation"]?.intValue ?? 1
                        body["metadata"]?["generation"] = .int(generation + 1)
                    }
                    let unchanged = body == object.body
                    object.body = body
                    if !unchanged {
                        state.resourceVersion += 1
                        object.body["metadata"]?["resourceVersion"] = .string(String(state.resourceVersion))
                        object.body = Self.controllerStatus(object.body, paused: state.controllersPaused)
                        events.append(("MODIFIED", object.body, path))
                    }
                    state.objects[path] = object
                    return .full(Self.json(200, object.body))
                }
                let created = create(manifest, manager: manager, state: &state)
                state.objects[path] = created
                events.append(("ADDED", created.body, path))
                return .full(Self.json(201, created.body))
            case "POST":
                guard let manifest = try? CairnJSON.decode(JSONValue.self, from: body), let name = manifest["metadata"]?["name"]?.stringValue else {
                    return .full(Self.status(400, "BadRequest", "invalid body"))
                }
                let objectPath = path + "/" + name
                if state.objects[objectPath] != nil { return .full(Self.status(409, "AlreadyExists", "\(target.resource) \"\(name)\" already exists")) }
                let created = create(manifest, manager: query["fieldManager"] ?? "unknown", state: &state)
                state.objects[objectPath] = created
                events.append(("ADDED", created.body, objectPath))
                return .full(Self.json(201, created.body))
            case "PUT":
                guard var object = state.objects[path], let manifest = try? CairnJSON.decode(JSONValue.self, from: body) else {
                    return .full(Self.status(404, "NotFound", "\(target.resource) \"\(target.name ?? "")\" not found"))
                }
                guard manifest["metadata"]?["resourceVersion"] == object.body["metadata"]?["resourceVersion"] else {
                    return .full(Self.status(409, "Conflict", "Operation cannot be fulfilled on \(target.resource) \"\(target.name ?? "")\": the object has been modified; please apply your changes to the latest version and try again"))
                }
                let specChanged = object.body["spec"] != manifest["spec"]
                var replaced = manifest
                replaced["metadata"]?["uid"] = object.body["metadata"]?["uid"]
                replaced["metadata"]?["generation"] = .int((object.body["metadata"]?["generation"]?.intValue ?? 1) + (specChanged ? 1 : 0))
                state.resourceVersion += 1
                replaced["metadata"]?["resourceVersion"] = .string(String(state.resourceVersion))
                object.body = Self.controllerStatus(replaced, paused: state.controllersPaused)
                state.objects[path] = object
                events.append(("MODIFIED", object.body, path))
                return .full(Self.json(200, object.body))
            case "DELETE":
                guard var object = state.objects[path] else { return .full(Self.status(404, "NotFound", "\(target.resource) \"\(target.name ?? "")\" not found")) }
                let options = try? CairnJSON.decode(JSONValue.self, from: body)
                if let uid = options?["preconditions"]?["uid"]?.stringValue, uid != object.body["metadata"]?["uid"]?.stringValue {
                    return .full(Self.status(409, "Conflict", "Precondition failed: UID in precondition: \(uid), UID in object meta: \(object.body["metadata"]?["uid"]?.stringValue ?? "")"))
                }
                if options?["propagationPolicy"] == "Foreground" {
                    object.body["metadata"]?["deletionTimestamp"] = .string(RFC3339.string(from: Date()))
                    object.body["metadata"]?["finalizers"] = ["foregroundDeletion"]
                    // The garbage collector finishes shortly after, once controllers run (up to 30 s paused); the
                    // object stays visible until then.
                    state.objects[path] = object
                    events.append(("MODIFIED", object.body, path))
                    let response = object.body
                    Task { [weak self] in
                        for _ in 0..<300 {
                            try? await Task.sleep(for: .milliseconds(100))
                            guard let self, self.state.withLock({ $0.controllersPaused }) else { break }
                        }
                        self?.remove(path)
                    }
                    return .full(Self.json(200, response))
                }
                state.objects[path] = nil
                events.append(("DELETED", object.body, path))
                return .full(Self.json(200, object.body))
            default:
                return .full(Self.status(405, "MethodNotAllowed", "method not allowed"))
            }
        }
        for (type, object, path) in events {
            emit(type, object, path: path)
            if type == "ADDED", object["kind"] == "CustomResourceDefinition" { establishLater(path) }
        }
        return reply
    }

    /// Discovery documents: aggregated (v2) when the client asks for it and the server offers it, legacy otherwise.
    func discovery(_ path: String, accept: String?, state: State) -> (Int, String, Data)? {
        let aggregated = state.aggregatedDiscovery && (accept ?? "").contains("as=APIGroupDiscoveryList")
        switch path {
        case "/apis" where aggregated:
            var document = recorded[Self.aggregatedAPIs] ?? [:]
            var items = document["items"]?.arrayValue ?? []
            for (groupVersion, resources) in state.extraResources.sorted(by: { $0.key < $1.key }) {
                let parts = groupVersion.split(separator: "/")
                let entries: [JSONValue] = resources.map {
                    ["resource": $0["name"] ?? "", "responseKind": ["group": .string(String(parts[1])), "version": .string(String(parts[2])), "kind": $0["kind"] ?? ""], "scope": .string($0["namespaced"] == true ? "Namespaced" : "Cluster")]
                }
                items.append(["metadata": ["name": .string(String(parts[1]))], "versions": [["version": .string(String(parts[2])), "resources": .array(entries), "freshness": "Current"]]])
            }
            document["items"] = .array(items)
            return (200, Self.aggregatedContentType, (try? CairnJSON.encode(document)) ?? Data())
        case "/api" where aggregated:
            let entries: [JSONValue] = (served["/api/v1"] ?? []).filter { !($0["name"]?.stringValue ?? "").contains("/") }.map {
                ["resource": $0["name"] ?? "", "responseKind": ["group": "", "version": "", "kind": $0["kind"] ?? ""], "scope": .string($0["namespaced"] == true ? "Namespaced" : "Cluster")]
            }
            let document: JSONValue = ["kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": [:], "items": [["metadata": [:], "versions": [["version": "v1", "resources": .array(entries), "freshness": "Current"]]]]]
            return (200, Self.aggregatedContentType, (try? CairnJSON.encode(document)) ?? Data())
        case "/apis":
            var document = recorded["/apis"] ?? [:]
            var groups = document["groups"]?.arrayValue ?? []
            for groupVersion in state.extraResources.keys.sorted() {
                let parts = groupVersion.split(separator: "/")
                groups.append(["name": .string(String(parts[1])), "versions": [["groupVersion": .string("\(parts[1])/\(parts[2])"), "version": .string(String(parts[2]))]]])
            }
            document["groups"] = .array(groups)
            return Self.json(200, document)
        case "/version":
            return recorded["/version"].map { Self.json(200, $0) }
        default:
            guard let resources = served[path] ?? state.extraResources[path] else { return nil }
            let groupVersion = path.hasPrefix("/api/") ? String(path.dropFirst(5)) : String(path.dropFirst(6))
            return Self.json(200, ["kind": "APIResourceList", "apiVersion": "v1", "groupVersion": .string(groupVersion), "resources": .array(resources)])
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
        let resources = (served[groupVersion] ?? []) + (state.extraResources[groupVersion] ?? [])
        guard resources.contains(where: { $0["name"]?.stringValue == resource }) else { return nil }
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
        return Object(body: Self.controllerStatus(body, paused: state.controllersPaused), managers: [manager: Set(Self.leaves(manifest).keys)])
    }

    /// A created CRD is accepted and established a moment later (as the recorded server's 201 carries no
    /// conditions yet); only then is its resource served.
    func establishLater(_ path: String) {
        let delay: Duration? = state.withLock { state in
            if state.establishDelay == nil { state.heldCRDs.append(path) }
            return state.establishDelay
        }
        guard let delay else { return }
        Task { [weak self] in
            try? await Task.sleep(for: delay)
            self?.establish(path)
        }
    }

    func establish(_ path: String) {
        apply(path, as: "kube-apiserver") { crd in
            crd["status"] = ["conditions": [["type": "NamesAccepted", "status": "True", "reason": "NoConflicts"], ["type": "Established", "status": "True", "reason": "InitialNamesAccepted"]], "acceptedNames": crd["spec"]?["names"] ?? [:]]
        }
        state.withLock { state in
            guard let crd = state.objects[path]?.body, let spec = crd["spec"], let group = spec["group"]?.stringValue,
                let plural = spec["names"]?["plural"]?.stringValue, let kind = spec["names"]?["kind"]?.stringValue
            else { return }
            for version in spec["versions"]?.arrayValue ?? [] {
                guard let name = version["name"]?.stringValue else { continue }
                state.extraResources["/apis/\(group)/\(name)", default: []].append(["name": .string(plural), "namespaced": .bool(spec["scope"] != "Cluster"), "kind": .string(kind)])
            }
        }
    }

    // MARK: Watches

    /// A watch on a collection: the current objects as ADDED unless a resourceVersion is given, a bookmark
    /// marking the end of those, then every change until `timeoutSeconds`.
    func watch(_ collection: String, query: [String: String], state: State) -> AsyncStream<Data> {
        let (stream, continuation) = AsyncStream.makeStream(of: Data.self)
        if query["resourceVersion"] == nil || query["resourceVersion"] == "0" {
            for (path, object) in state.objects.sorted(by: { $0.key < $1.key }) where (path as NSString).deletingLastPathComponent == collection {
                continuation.yield(Self.event("ADDED", object.body))
            }
        }
        if query["allowWatchBookmarks"] == "true" {
            continuation.yield(Self.event("BOOKMARK", ["metadata": ["resourceVersion": .string(String(state.resourceVersion)), "annotations": ["k8s.io/initial-events-end": "true"]]]))
        }
        let id = UUID()
        watchers.withLock { $0[id] = Watcher(collection: collection, continuation: continuation) }
        let timeout = Double(query["timeoutSeconds"] ?? "") ?? 1800
        let keepalive = Task { [weak self] in
            // Periodic bookmarks, as the real server sends; writing them is also how a closed client is noticed.
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(100))
                let version = self?.state.withLock { $0.resourceVersion } ?? 0
                continuation.yield(Self.event("BOOKMARK", ["metadata": ["resourceVersion": .string(String(version))]]))
            }
        }
        continuation.onTermination = { [weak self] _ in
            keepalive.cancel()
            _ = self?.watchers.withLock { $0.removeValue(forKey: id) }
        }
        Task {
            try? await Task.sleep(for: .milliseconds(Int64(timeout * 1000)))
            continuation.finish()
        }
        return stream
    }

    func emit(_ type: String, _ object: JSONValue, path: String) {
        let collection = (path as NSString).deletingLastPathComponent
        let event = Self.event(type, object)
        for watcher in watchers.withLock({ $0.values }) where watcher.collection == collection {
            watcher.continuation.yield(event)
        }
    }

    static func event(_ type: String, _ object: JSONValue) -> Data {
        var data = (try? CairnJSON.encode(["type": .string(type), "object": object] as JSONValue)) ?? Data()
        data.append(UInt8(ascii: "\n"))
        return data
    }

    // MARK: Helpers

    static func legacyEntry(_ aggregated: JSONValue) -> JSONValue {
        ["name": aggregated["resource"] ?? "", "namespaced": .bool(aggregated["scope"] == "Namespaced"), "kind": aggregated["responseKind"]?["kind"] ?? ""]
    }

    /// What the controllers would report: every replica updated and available at this generation.
    static func controllerStatus(_ body: JSONValue, paused: Bool) -> JSONValue {
        guard !paused else { return body }
        var body = body
        if body["kind"] == "Deployment" || body["kind"] == "StatefulSet" || body["kind"] == "ReplicaSet" {
            let replicas = body["spec"]?["replicas"]?.intValue ?? 1
            body["status"] = ["observedGeneration": body["metadata"]?["generation"] ?? 1, "replicas": .int(replicas), "readyReplicas": .int(replicas), "availableReplicas": .int(replicas), "updatedReplicas": .int(replicas)]
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

    static func removing(_ field: String, from value: JSONValue) -> JSONValue {
        let segments = field.split(separator: ".").map(String.init)
        func strip(_ value: JSONValue, _ rest: ArraySlice<String>) -> JSONValue {
            guard case .object(var fields) = value, let first = rest.first else { return value }
            if rest.count == 1 {
                fields[first] = nil
            } else if let child = fields[first] {
                fields[first] = strip(child, rest.dropFirst())
            }
            return .object(fields)
        }
        return strip(value, segments[...])
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
        let reply = server.handle(
            method: request.method.rawValue, path: request.uri.path, query: query, accept: request.headers[.accept],
            authorization: request.headers[.authorization], body: Data(body.readableBytesView))
        switch reply {
        case .full(let (status, contentType, data)):
            return Response(status: .init(code: status), headers: [.contentType: contentType], body: .init(byteBuffer: ByteBuffer(bytes: data)))
        case .watch(let events):
            return Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: ResponseBody { writer in
                    for await event in events { try await writer.write(ByteBuffer(bytes: event)) }
                    try await writer.finish(nil)
                })
        }
    }
}
