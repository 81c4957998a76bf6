import Foundation

/// A program the bench runs as a child: its output in a log file, a line it prints, its memory and CPU, kill -9.
final class BenchProcess: @unchecked Sendable {
    let process = Process()
    let log: String

    init(binary: String, arguments: [String], log: String) throws {
        self.log = log
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        process.standardOutput = output
        process.standardError = output
        try process.run()
    }

    /// Waits (up to `timeout` seconds) for the program to print a line starting with `prefix`; returns the rest.
    func waitForLine(_ prefix: String, timeout: Double = 60) async throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            if let line = text.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }) { return String(line.dropFirst(prefix.count)) }
            guard process.isRunning else { throw BenchError("\(process.executableURL?.lastPathComponent ?? "the program") exited: \(text.suffix(2000))") }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw BenchError("\(process.executableURL?.lastPathComponent ?? "the program") did not print '\(prefix)' within \(timeout) s (log: \(log))")
    }

    /// Memory and CPU time, from /proc.
    var stats: ProcessStats { ProcessStats.of(process.processIdentifier) }
    var residentBytes: Int { stats.resident }

    /// SIGKILL, then up to 10 s for the program to be gone.
    func kill() async {
        if process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL) }
        _ = await exited(within: 10)
    }

    /// SIGTERM, then up to `within` seconds for the program to exit; past that, SIGKILL. Whether it exited by itself.
    func terminate(within timeout: Double = 30) async -> Bool {
        if process.isRunning { process.terminate() }
        guard await exited(within: timeout) else {
            await kill()
            return false
        }
        return true
    }

    /// Whether the program is gone within `timeout` seconds. (Never `waitUntilExit`: once, a child killed with -9
    /// stayed a zombie that Foundation never reaped, and the bench waited for ever.)
    private func exited(within timeout: Double) async -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning, Date() < deadline { try? await Task.sleep(for: .milliseconds(50)) }
        return !process.isRunning
    }
}

/// `cairn-hub serve` as a child process: where it listens once it says so.
final class HubProcess: @unchecked Sendable {
    let child: BenchProcess
    private(set) var url = ""

    init(binary: String, stateDirectory: String, port: Int, log: String, extra: [String]) throws {
        child = try BenchProcess(
            binary: binary, arguments: ["serve", "--state-dir", stateDirectory, "--listen", "127.0.0.1:\(port)", "--log-level", "error"] + extra, log: log)
    }

    func waitListening(timeout: Double = 60) async throws {
        url = try await child.waitForLine("cairn-hub listening on ", timeout: timeout)
    }

    var port: Int { Int(url.split(separator: ":").last ?? "") ?? 0 }
    var stats: ProcessStats { child.stats }
    var residentBytes: Int { child.residentBytes }
    func kill() async { await child.kill() }
    func terminate() async -> Bool { await child.terminate() }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
