import AsyncHTTPClient
import CairnCommon
import Foundation
import GRDB
import NIOSSL

/// p50/p90/p99/max of a set of durations, in milliseconds (nearest rank).
struct Percentiles: Sendable {
    var count: Int
    var p50: Double
    var p90: Double
    var p99: Double
    var max: Double

    init(_ samples: [Duration]) {
        let sorted = samples.map { $0.inSeconds * 1000 }.sorted()
        count = sorted.count
        func rank(_ p: Double) -> Double {
            guard !sorted.isEmpty else { return 0 }
            return sorted[Swift.max(0, Swift.min(sorted.count - 1, Int((p * Double(sorted.count)).rounded(.up)) - 1))]
        }
        p50 = rank(0.5)
        p90 = rank(0.9)
        p99 = rank(0.99)
        max = sorted.last ?? 0
    }

    var json: JSONValue { ["p50": .double(p50), "p90": .double(p90), "p99": .double(p99), "max": .double(max), "count": .int(Int64(count))] }
    var text: String { count == 0 ? "none" : String(format: "p50 %.1f  p90 %.1f  p99 %.1f  max %.1f ms  (n=%d)", p50, p90, p99, max, count) }
}

/// A process's memory and CPU time, from /proc.
struct ProcessStats: Sendable {
    var resident: Int
    var anonymous: Int
    /// User and system CPU time so far, in seconds.
    var cpuSeconds: Double

    static func of(_ pid: Int32) -> ProcessStats {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        func field(_ name: String) -> Int {
            guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }) else { return 0 }
            return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
        }
        // /proc/PID/stat: the fields after the command's closing parenthesis; utime and stime are the 12th and 13th.
        let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
        let fields = stat.split(separator: ")").last?.split(separator: " ") ?? []
        let ticks = fields.count > 12 ? (Double(fields[11]) ?? 0) + (Double(fields[12]) ?? 0) : 0
        return ProcessStats(resident: field("VmRSS"), anonymous: field("RssAnon"), cpuSeconds: ticks / Double(sysconf(Int32(_SC_CLK_TCK))))
    }

    /// Resident memory by what it maps, largest first: each file by its name, anonymous memory as "[anonymous]"
    /// (heap and thread stacks together) — where a process's pages are, from /proc/PID/smaps.
    static func residentByMapping(of pid: Int32) -> [(name: String, bytes: Int)] {
        // Read to the end: Foundation's String(contentsOfFile:) stops after the first page of a /proc file.
        let data = FileHandle(forReadingAtPath: "/proc/\(pid)/smaps")?.readDataToEndOfFile() ?? Data()
        let smaps = String(decoding: data, as: UTF8.self)
        var totals: [String: Int] = [:]
        var current = "[anonymous]"
        for line in smaps.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard let first = fields.first else { continue }
            if first == "Rss:", fields.count > 1 {
                totals[current, default: 0] += (Int(fields[1]) ?? 0) * 1024
            } else if first.contains("-"), first.first?.isHexDigit == true {
                // A mapping's header: range, permissions, offset, device, inode, then the path if it has one.
                let path = fields.count > 5 ? fields[5...].joined(separator: " ") : ""
                current = path.hasPrefix("/") ? String(path.split(separator: "/").last ?? "") : "[anonymous]"
            }
        }
        return totals.sorted { $0.value > $1.value }.map { (name: $0.key, bytes: $0.value) }
    }

    /// Readings every 100 ms for `seconds`, through `read`: memory is the median of them (a process that wakes to
    /// do something now and then is mostly not doing it), `peak` the largest; CPU is the share over the whole window.
    static func idle(seconds: Double, _ read: () -> ProcessStats) async throws -> (typical: ProcessStats, peak: Int, cpu: Double) {
        let start = read()
        let clock = ContinuousClock()
        let began = clock.now
        var end = start
        var resident = [Int]()
        var anonymous = [Int]()
        repeat {
            try await Task.sleep(for: .milliseconds(100))
            end = read()
            resident.append(end.resident)
            anonymous.append(end.anonymous)
        } while (clock.now - began).inSeconds < seconds
        resident.sort()
        anonymous.sort()
        let typical = ProcessStats(resident: resident[resident.count / 2], anonymous: anonymous[anonymous.count / 2], cpuSeconds: end.cpuSeconds)
        return (typical, resident[resident.count - 1], cpuShare(from: start, to: end, seconds: (clock.now - began).inSeconds))
    }

    /// Share of one core used between two readings `seconds` apart.
    static func cpuShare(from start: ProcessStats, to end: ProcessStats, seconds: Double) -> Double {
        seconds > 0 ? (end.cpuSeconds - start.cpuSeconds) / seconds : 0
    }
}

/// What no change can beat on this machine: one HTTP round trip on loopback and one durable SQLite commit.
enum Floor {
    /// The median of `count` sequential GETs of the hub's /healthz over one kept-alive TLS connection.
    static func httpRoundTrip(http: HTTPClient, url: String, tls: TLSConfiguration?, count: Int = 200) async throws -> Duration {
        var samples = [Duration]()
        for index in 0..<(count + 20) {
            let started = ContinuousClock.now
            try await healthz(http: http, url: url, tls: tls)
            if index >= 20 { samples.append(ContinuousClock.now - started) }
        }
        return median(samples)
    }

    /// One `GET /healthz`, read to its end; anything but 200 is an error (a refused request is no floor).
    static func healthz(http: HTTPClient, url: String, tls: TLSConfiguration?) async throws {
        var request = HTTPClientRequest(url: url + "/healthz")
        request.tlsConfiguration = tls
        let response = try await http.execute(request, timeout: .seconds(10))
        _ = try await response.body.collect(upTo: 1024)
        guard response.status == .ok else { throw BenchError("the floor's GET /healthz was answered \(response.status)") }
    }

    /// What a request costs when many are in flight, as a write's four are: `count` GETs of the hub's /healthz,
    /// `concurrency` at once over the administrator's connection, with nothing else running. Throughput, and the CPU
    /// each took in the hub and in this process (the client's TLS, HTTP/2 and AsyncHTTPClient).
    static func requests(
        http: HTTPClient, url: String, tls: TLSConfiguration?, hub: @Sendable () -> ProcessStats, count: Int = 2000, concurrency: Int = 32
    ) async throws -> RequestFloor {
        // The connection up and warm first; then issued as the writes are (`concurrently`).
        for _ in 0..<min(concurrency, count) { try await healthz(http: http, url: url, tls: tls) }
        let (hubBefore, selfBefore) = (hub(), ProcessStats.of(getpid()))
        let started = ContinuousClock.now
        _ = try await concurrently(Array(0..<count), atMost: concurrency) { _ in try await healthz(http: http, url: url, tls: tls) }
        let seconds = (ContinuousClock.now - started).inSeconds
        let (hubAfter, selfAfter) = (hub(), ProcessStats.of(getpid()))
        return RequestFloor(
            perSecond: Double(count) / seconds,
            hubMs: 1000 * (hubAfter.cpuSeconds - hubBefore.cpuSeconds) / Double(count),
            clientMs: 1000 * (selfAfter.cpuSeconds - selfBefore.cpuSeconds) / Double(count))
    }

    struct RequestFloor: Sendable {
        var perSecond: Double
        var hubMs: Double
        var clientMs: Double
    }

    /// The median of `count` one-row commits to a new SQLite file in `directory`, set up as the hub sets up its own
    /// (WAL, synchronous=FULL).
    static func sqliteCommit(directory: String, count: Int = 200) throws -> Duration {
        let path = directory + "/floor.sqlite"
        defer {
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        }
        var configuration = Configuration()
        configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        let pool = try DatabasePool(path: path, configuration: configuration)
        try pool.write { try $0.execute(sql: "CREATE TABLE floor (id INTEGER PRIMARY KEY, value TEXT)") }
        var samples = [Duration]()
        for index in 0..<(count + 20) {
            let started = ContinuousClock.now
            try pool.write { try $0.execute(sql: "INSERT INTO floor (value) VALUES (?)", arguments: ["commit \(index)"]) }
            if index >= 20 { samples.append(ContinuousClock.now - started) }
        }
        try pool.close()
        return median(samples)
    }

    static func median(_ samples: [Duration]) -> Duration { samples.sorted()[samples.count / 2] }
}
