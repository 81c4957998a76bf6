import ArgumentParser
import AsyncHTTPClient
import CairnAgent
import CairnCommon
import CairnCtlKit
import Foundation
import Synchronization

/// `cairn-bench`: measures the hub and agents on this machine.
public struct BenchCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "cairn-bench", abstract: "Measure Cairn on this machine.", subcommands: [Run.self, Reconnect.self])
    public init() {}
}

/// The hub's resident memory, every 100 ms, keeping the peak.
final class RSSSampler: Sendable {
    let process: HubProcess
    let peak = Mutex<Int>(0)
    init(process: HubProcess) { self.process = process }
    func run() async {
        while !Task.isCancelled {
            let now = process.residentBytes
            peak.withLock { $0 = max($0, now) }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }
}

/// Limits that would distort a run with many connections, raised where the process may.
enum Limits {
    static func raise() -> (files: Int, ports: String) {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        // Where the process may (root, up to the kernel's nr_open), past the hard limit too; else up to it.
        let ceiling = (try? String(contentsOfFile: "/proc/sys/fs/nr_open", encoding: .utf8)).flatMap { rlim_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        if let ceiling, ceiling > limit.rlim_max {
            var wider = rlimit(rlim_cur: ceiling, rlim_max: ceiling)
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &wider) == 0 { limit = wider }
        }
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max
            setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        let ports = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8))?
            .split(whereSeparator: \.isWhitespace).joined(separator: "-") ?? "unknown"
        return (Int(limit.rlim_cur), ports)
    }
}
