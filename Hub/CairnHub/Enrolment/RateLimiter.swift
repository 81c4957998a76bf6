import Foundation

/// A token bucket per source address: `burst` requests at once, then `perSecond`. Enrolment is the one endpoint
/// anyone may call, so it is where guessing and flooding are slowed down.
public actor RateLimiter {
    private var buckets: [String: (tokens: Double, updated: Date)] = [:]
    let burst: Double
    let perSecond: Double

    public init(burst: Double, perSecond: Double) {
        self.burst = burst
        self.perSecond = perSecond
    }

    /// Takes one token for `source`; returns the seconds to wait when there is none.
    public func take(_ source: String, now: Date = Date()) -> Double? {
        var bucket = buckets[source] ?? (burst, now)
        bucket.tokens = min(burst, bucket.tokens + now.timeIntervalSince(bucket.updated) * perSecond)
        bucket.updated = now
        defer {
            buckets[source] = bucket
            if buckets.count > 10_000 { buckets = buckets.filter { $0.value.tokens < burst } }
        }
        guard bucket.tokens >= 1 else { return (1 - bucket.tokens) / perSecond }
        bucket.tokens -= 1
        return nil
    }
}
