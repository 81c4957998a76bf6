import CairnCommon
import Hummingbird
import Synchronization

/// Bounds what the hub holds at once — long-polls and other requests — and sheds the rest with 503 and a
/// jittered Retry-After, so a thousand agents coming back together spread out instead of piling up in memory.
///
/// The Retry-After window grows with the overload (`RetryWindow`): 2–10 s while the hub turns away fewer than it
/// serves, and wide enough past that for those turned away to come back about as fast as the hub serves. A fixed
/// window let 10,000 sites retrying every few seconds ask seven times what the hub could answer, every refusal
/// costing it a TLS record and an HTTP/2 stream, and it never caught up (measured once at 10,000 sites).
public final class LoadShedder: Sendable {
    let maxLongPolls: Int
    let maxRequests: Int
    let maxReports: Int
    private let longPolls = Atomic<Int>(0)
    private let requests = Atomic<Int>(0)
    private let reports = Atomic<Int>(0)
    private let shedCount = Atomic<Int>(0)
    private let servedCount = Atomic<Int>(0)
    private let window = Mutex(RetryWindow())

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
            let shed = shedCount.wrappingAdd(1, ordering: .relaxed).newValue
            let served = servedCount.load(ordering: .relaxed)
            let longest = window.withLock { $0.longest(shed: shed, served: served, at: ContinuousClock.now) }
            throw CairnError(.unavailable, "the hub is at its limit of \(limit) \(what); retry later", retryAfter: Int.random(in: 2...longest))
        }
        defer { servedCount.wrappingAdd(1, ordering: .relaxed) }
        return try await body()
    }
}

/// How far to spread those turned away, from the requests shed and served over the last second or so. Those turned
/// away keep asking until they are served: shed S a second against A served, they ask S/A times more often than
/// the hub can answer, so the window is stretched that many times (twice, for headroom) — never under 10 s, never
/// over 5 minutes.
struct RetryWindow {
    static let shortest = 10
    static let longest = 300
    private var start: ContinuousClock.Instant?
    private var shedAtStart = 0
    private var servedAtStart = 0
    private var current = RetryWindow.shortest

    /// `shed` and `served` are running totals.
    mutating func longest(shed: Int, served: Int, at now: ContinuousClock.Instant) -> Int {
        guard let start else {
            (self.start, shedAtStart, servedAtStart) = (now, shed, served)
            return current
        }
        let elapsed = now - start
        guard elapsed >= .seconds(1) else { return current }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let shedRate = Double(shed - shedAtStart) / seconds
        let servedRate = max(1, Double(served - servedAtStart) / seconds)
        let window = 2 * shedRate / servedRate * Double(Self.shortest)
        current = min(Self.longest, max(Self.shortest, Int(window.rounded(.up))))
        (self.start, shedAtStart, servedAtStart) = (now, shed, served)
        return current
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
