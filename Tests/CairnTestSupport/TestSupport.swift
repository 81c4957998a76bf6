import CairnCommon
import Foundation
import Synchronization
import Testing

/// A fresh directory under the system's temporary directory, removed by `remove()`.
public struct TemporaryDirectory: Sendable {
    public let path: String

    public init(_ label: String = "cairn") throws {
        path = NSTemporaryDirectory() + "\(label)-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    public func appending(_ component: String) -> String { (path as NSString).appendingPathComponent(component) }
    public func remove() { try? FileManager.default.removeItem(atPath: path) }
}

public struct TimedOut: Error, CustomStringConvertible {
    public var description: String
}

/// How `task` ended — its value or its error — waiting at most `timeout` seconds. Past that the task is cancelled
/// and `TimedOut` names `what` at once: the caller is not held by a task that ignores its cancellation.
public func outcome<T: Sendable, Failure: Error>(
    of task: Task<T, Failure>, within timeout: Double, _ what: String
) async throws -> Result<T, any Error> {
    let waiting = Waiting<Result<T, any Error>>()
    return try await withCheckedThrowingContinuation { continuation in
        waiting.slot.withLock { $0 = continuation }
        let timer = Task {
            try await Task.sleep(for: .milliseconds(Int64(timeout * 1000)))
            guard let continuation = waiting.slot.withLock({ $0.take() }) else { return }
            task.cancel()
            continuation.resume(throwing: TimedOut(description: "\(what) within \(timeout)s"))
        }
        Task {
            let result = await task.result
            timer.cancel()
            waiting.slot.withLock { $0.take() }?.resume(returning: result.mapError { $0 as any Error })
        }
    }
}

/// The value of `task` within `timeout` seconds (see `outcome(of:within:_:)`); its error, or `TimedOut`, is thrown.
public func value<T: Sendable, Failure: Error>(of task: Task<T, Failure>, within timeout: Double, _ what: String) async throws -> T {
    try await outcome(of: task, within: timeout, what).get()
}

/// Whoever comes first — the value or the timer — takes the continuation.
final class Waiting<T: Sendable>: Sendable {
    let slot = Mutex<CheckedContinuation<T, any Error>?>(nil)
}

/// Polls `condition` every 20 ms until it holds; fails after `timeout` seconds, saying what was awaited.
public func eventually(
    _ what: String, timeout: Double = 10, _ condition: () async throws -> Bool
) async throws {
    let deadline = Date().addingTimeInterval(timeout)
    while true {
        if (try? await condition()) == true { return }
        guard Date() < deadline else { throw TimedOut(description: "timed out after \(timeout)s waiting for \(what)") }
        try await Task.sleep(for: .milliseconds(20))
    }
}

/// The real manifests in ../shared/corpus beside the checkout.
public enum Corpus {
    public static var root: String {
        if let override = ProcessInfo.processInfo.environment["CAIRN_CORPUS"] { return override }
        let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return packageRoot.deletingLastPathComponent().appendingPathComponent("shared/corpus").path
    }

    public static func text(_ relativePath: String) throws -> String {
        try String(contentsOfFile: root + "/" + relativePath, encoding: .utf8)
    }

    /// Online Boutique's manifests, parsed (once for the whole run).
    public static func onlineBoutique() throws -> [JSONValue] { try boutique.get() }

    private static let boutique = Result { try parseOnlineBoutique() }

    /// Online Boutique's manifests parsed anew, on the caller's thread: for a test that needs a parse of its own.
    public static func parseOnlineBoutique() throws -> [JSONValue] {
        try DocumentParser().parse(try text("online-boutique/kubernetes-manifests.yaml"), source: "online-boutique")
    }

    /// Every kube-prometheus manifest file (CRDs under setup/ included), parsed, by file name.
    ///
    /// Parsed once for the whole run, on a thread of its own (`computing`): in a debug build it takes seconds, and
    /// tests that parsed it on the run's shared threads — three end-to-end suites, one of them once per file it
    /// wanted — held both of a 2-core machine's for 5–8 s at a time, so hubs and agents in other tests went unserved
    /// and their 10 s waits for a site to join ran out.
    public static func kubePrometheus() async throws -> [(file: String, documents: [JSONValue])] {
        try await kubePrometheusParsed.value
    }

    /// One kube-prometheus manifest file, by its path under `manifests/`.
    public static func kubePrometheus(_ file: String) async throws -> [JSONValue] {
        guard let found = try await kubePrometheus().first(where: { $0.file == file }) else {
            throw CairnError(.notFound, "the corpus has no kube-prometheus file \(file)")
        }
        return found.documents
    }

    private static let kubePrometheusParsed = Task { try await computing { try parseKubePrometheus() } }

    /// Every kube-prometheus manifest file parsed anew, on the caller's thread: for a test that needs a parse of its own.
    public static func parseKubePrometheus() throws -> [(file: String, documents: [JSONValue])] {
        var result = [(file: String, documents: [JSONValue])]()
        let base = root + "/kube-prometheus/manifests"
        let enumerator = FileManager.default.enumerator(atPath: base)
        var files = [String]()
        while let file = enumerator?.nextObject() as? String { if file.hasSuffix(".yaml") { files.append(file) } }
        for file in files.sorted() {
            result.append((file, try DocumentParser().parse(try String(contentsOfFile: base + "/" + file, encoding: .utf8), source: file)))
        }
        return result
    }

    /// The demo's three-component service: Online Boutique's front end (Deployment + Service) and its Redis cache,
    /// plus a database StatefulSet, all in namespace `shop`.
    public static func threeComponentService(frontendReplicas: Int64 = 2) throws -> [JSONValue] {
        let boutique = try onlineBoutique()
        func pick(_ kind: String, _ name: String) throws -> JSONValue {
            guard var manifest = boutique.first(where: { $0["kind"]?.stringValue == kind && $0["metadata"]?["name"]?.stringValue == name }) else {
                throw TimedOut(description: "corpus has no \(kind) \(name)")
            }
            manifest["metadata"]?["namespace"] = "shop"
            return manifest
        }
        var frontend = try pick("Deployment", "frontend")
        frontend["spec"]?["replicas"] = .int(frontendReplicas)
        let database: JSONValue = [
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": ["name": "orders-db", "namespace": "shop", "labels": ["app": "orders-db"]],
            "spec": [
                "serviceName": "orders-db", "replicas": 1,
                "selector": ["matchLabels": ["app": "orders-db"]],
                "template": [
                    "metadata": ["labels": ["app": "orders-db"]],
                    "spec": ["containers": [["name": "postgres", "image": "postgres:16", "ports": [["containerPort": 5432]]]]],
                ],
            ],
        ]
        return [["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": "shop"]], frontend, try pick("Service", "frontend"), try pick("Deployment", "redis-cart"), database]
    }
}

/// Runs `body` on a thread of its own rather than on the test run's shared threads.
///
/// Swift Testing runs the tests at once on a pool as wide as the machine has cores; a test that computes for seconds
/// (parsing the corpus in a debug build, fuzzing) holds one of them all along. On two cores two such tests stalled
/// every other test — those waiting on sockets and timers too — for 15–19 s at the start of a run, longer than many
/// of their waits. `body` runs in the same task, so expectations in it count for the test as usual.
public func computing<T>(_ body: () async throws -> T) async rethrows -> T {
    try await withTaskExecutorPreference(OwnThread()) { try await body() }
}

/// A task executor with a serial queue, so a thread, of its own (a serial queue is not limited to the cooperative pool).
private final class OwnThread: TaskExecutor {
    private let queue = DispatchQueue(label: "cairn.test.computing")

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        queue.async { job.runSynchronously(on: executor) }
    }
}

/// Runs each test of the suite it marks, the suite's `init` included, on a thread of its own (`computing`).
///
/// For suites whose tests work synchronously for long: a hundred SQLite commits, each waiting for the disk, hold a
/// thread of the run's shared pool as surely as computing does.
public struct OwnThreadTrait: SuiteTrait, TestTrait, TestScoping {
    public var isRecursive: Bool { true }

    public func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        // The suite itself is passed through: under one executor its tests would run one at a time.
        guard testCase != nil else { return try await function() }
        try await computing { try await function() }
    }
}

extension Trait where Self == OwnThreadTrait {
    /// Each test on a thread of its own: see `OwnThreadTrait`.
    public static var ownThread: Self { Self() }
}
