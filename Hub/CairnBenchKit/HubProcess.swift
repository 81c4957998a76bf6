import Foundation

/// `cairn-hub serve` as a child process of the bench: its URL once it listens, its memory, and kill -9.
final class HubProcess: @unchecked Sendable {
    let process = Process()
    let log: String
    private(set) var url = ""

    init(binary: String, stateDirectory: String, port: Int, log: String, extra: [String]) throws {
        self.log = log
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["serve", "--state-dir", stateDirectory, "--listen", "127.0.0.1:\(port)", "--log-level", "error"] + extra
        process.standardOutput = output
        process.standardError = output
        try process.run()
    }

    /// Waits (up to `timeout` seconds) for the hub to print where it listens.
    func waitListening(timeout: Double = 60) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("cairn-hub listening on ") }) {
                url = String(line.dropFirst("cairn-hub listening on ".count))
                return
            }
            guard process.isRunning else { throw BenchError("the hub exited: \(text)") }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw BenchError("the hub did not listen within \(timeout) s")
    }

    var port: Int { Int(url.split(separator: ":").last ?? "") ?? 0 }

    /// Resident memory, from /proc.
    var residentBytes: Int { Self.memory(of: process.processIdentifier).resident }

    static func memory(of pid: Int32) -> (resident: Int, anonymous: Int) {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return (0, 0) }
        func field(_ name: String) -> Int {
            guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }) else { return 0 }
            return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
        }
        return (field("VmRSS"), field("RssAnon"))
    }

    func kill() {
        if process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    func terminate() {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
