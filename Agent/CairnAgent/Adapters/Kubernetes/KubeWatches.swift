import AsyncHTTPClient
import CairnCommon
import Foundation
import NIOCore
import Synchronization

/// One watch per collection (resource and namespace) holding objects the agent manages, each on its own
/// long-lived request that resumes from the last resourceVersion it saw. A collection that cannot be watched,
/// or one beyond `limit`, is left to polling.
final class KubeWatches: Sendable {
    struct Watch: Sendable {
        var names: Set<String>
        var task: Task<Void, Never>
        var healthy: Bool
    }

    let connection: KubeConnection
    let http: HTTPClient
    let limit: Int
    let timeoutSeconds: Int
    private let watches = Mutex<[String: Watch]>([:])

    init(connection: KubeConnection, limit: Int = 16, timeoutSeconds: Int = 300) {
        self.connection = connection
        self.limit = limit
        self.timeoutSeconds = timeoutSeconds
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = limit
        configuration.timeout = .init(connect: .seconds(10))
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    func shutdown() async {
        for watch in watches.withLock({ state in defer { state.removeAll() }; return Array(state.values) }) { watch.task.cancel() }
        try? await http.shutdown()
    }

    /// Starts, keeps and stops watches so exactly `collections` (path → names) are watched; true when all are
    /// watched and healthy.
    func update(_ collections: [String: Set<String>], changed: @escaping @Sendable () -> Void) -> Bool {
        let wanted = collections.keys.sorted().prefix(limit)
        let stopped: [Watch] = watches.withLock { watches in
            let leaving = watches.keys.filter { collections[$0] == nil || !wanted.contains($0) }
            return leaving.compactMap { watches.removeValue(forKey: $0) }
        }
        for watch in stopped { watch.task.cancel() }
        return watches.withLock { watches in
            for path in wanted {
                if watches[path] != nil {
                    watches[path]?.names = collections[path] ?? []
                } else {
                    let task = Task { [weak self] () -> Void in await self?.run(path, changed: changed) }
                    watches[path] = Watch(names: collections[path] ?? [], task: task, healthy: false)
                }
            }
            return wanted.count == collections.count && watches.values.allSatisfy(\.healthy)
        }
    }

    private func setHealthy(_ path: String, _ healthy: Bool) {
        watches.withLock { $0[path]?.healthy = healthy }
    }

    private func tracks(_ path: String, _ name: String) -> Bool {
        watches.withLock { $0[path]?.names.contains(name) ?? false }
    }

    /// Watches one collection until cancelled: reconnects after each timeout from the last resourceVersion,
    /// and after a failure (or 410 Gone) from scratch with backoff, telling the caller to look meanwhile.
    private func run(_ path: String, changed: @escaping @Sendable () -> Void) async {
        var resourceVersion: String?
        var backoff = Backoff(initial: 1, maximum: 30)
        while !Task.isCancelled {
            do {
                var query = "?watch=1&allowWatchBookmarks=true&timeoutSeconds=\(timeoutSeconds)"
                if let resourceVersion { query += "&resourceVersion=\(resourceVersion)" }
                let request = connection.request(.GET, path + query)
                let response = try await http.execute(request, timeout: .seconds(Int64(timeoutSeconds) + 30))
                guard response.status == .ok else {
                    throw AdapterError(reason: "WatchFailed", message: "watch \(path): the API server answered \(response.status.code)")
                }
                setHealthy(path, true)
                backoff.reset()
                var pending = ByteBuffer()
                stream: for try await var chunk in response.body {
                    pending.writeBuffer(&chunk)
                    while let newline = pending.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
                        let length = newline - pending.readerIndex
                        guard let line = pending.readSlice(length: length) else { break }
                        pending.moveReaderIndex(forwardBy: 1)
                        guard let event = try? CairnJSON.decode(JSONValue.self, from: Data(line.readableBytesView)) else { continue }
                        let object = event["object"]
                        if event["type"] == "ERROR" {
                            // 410 Gone: the resourceVersion is too old; start over (and look at everything).
                            resourceVersion = nil
                            changed()
                            break stream
                        }
                        if let version = object?["metadata"]?["resourceVersion"]?.stringValue { resourceVersion = version }
                        if event["type"] != "BOOKMARK", let name = object?["metadata"]?["name"]?.stringValue, tracks(path, name) {
                            changed()
                        }
                    }
                }
            } catch {
                if Task.isCancelled { return }
                setHealthy(path, false)
                changed()
                resourceVersion = nil
                try? await Task.sleep(for: backoff.next())
            }
        }
    }
}
