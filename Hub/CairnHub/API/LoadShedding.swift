import CairnCommon
import Hummingbird
import Synchronization

/// Bounds what the hub holds at once — long-polls and other requests — and sheds the rest with 503 and a
/// jittered Retry-After, so a thousand agents coming back together spread out instead of piling up in memory.
public final class LoadShedder: Sendable {
    let maxLongPolls: Int
    let maxRequests: Int
    let maxReports: Int
    private let longPolls = Atomic<Int>(0)
    private let requests = Atomic<Int>(0)
    private let reports = Atomic<Int>(0)
    private let shedCount = Atomic<Int>(0)

    public init(maxLongPolls: Int, maxRequests: Int, maxReports: Int = 4096) {
        self.maxLongPolls = maxLongPolls
        self.maxRequests = maxRequests
        self.maxReports = maxReports
    }

    /// How many requests were shed so far.
    public var shed: Int { shedCount.load(ordering: .relaxed) }

    /// Requests being handled now (long-polls and sites' reports aside).
    public var requestsInFlight: Int { requests.load(ordering: .relaxed) }

    /// Sites' status reports and heartbeats being handled now.
    public var reportsInFlight: Int { reports.load(ordering: .relaxed) }

    /// Runs `body` as a held long-poll, or throws 503 when the hub holds as many as it may.
    func holdingLongPoll<T>(_ body: () async throws -> T) async throws -> T {
        try await holding(longPolls, limit: maxLongPolls, what: "agents waiting for bundles", body)
    }

    func holdingRequest<T>(_ body: () async throws -> T) async throws -> T {
        try await holding(requests, limit: maxRequests, what: "requests in flight", body)
    }

    func holdingReport<T>(_ body: () async throws -> T) async throws -> T {
        try await holding(reports, limit: maxReports, what: "site reports in flight", body)
    }

    private func holding<T>(_ counter: borrowing Atomic<Int>, limit: Int, what: String, _ body: () async throws -> T) async throws -> T {
        let now = counter.wrappingAdd(1, ordering: .relaxed).newValue
        defer { counter.wrappingSubtract(1, ordering: .relaxed) }
        guard now <= limit else {
            shedCount.wrappingAdd(1, ordering: .relaxed)
            throw CairnError(.unavailable, "the hub is at its limit of \(limit) \(what); retry later", retryAfter: Int.random(in: 2...10))
        }
        return try await body()
    }
}

/// Sheds requests beyond the hub's limit before they reach a handler; bundle long-polls are bounded by their own
/// limit where they wait, and sites' status reports and heartbeats count against theirs.
struct LoadShedMiddleware<Context: RequestContext>: RouterMiddleware {
    let shedder: LoadShedder

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        if request.method == .get && path.hasSuffix("/bundle") { return try await next(request, context) }
        if request.method == .post && path.hasPrefix("/api/v1/agent/clusters/") && (path.hasSuffix("/status") || path.hasSuffix("/heartbeat")) {
            return try await shedder.holdingReport { try await next(request, context) }
        }
        return try await shedder.holdingRequest { try await next(request, context) }
    }
}
