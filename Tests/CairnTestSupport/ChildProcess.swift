import Foundation

/// One of our own executables, run as a real child process (for tests where a process boundary, a signal
/// or a restart is the point). Its output goes to a log file the test can show when something fails.
public final class ChildProcess: @unchecked Sendable {
    let process = Process()
    public let logPath: String

    /// The built executable `name`, from the directory the test bundle was built into.
    public static func executable(_ name: String) throws -> String {
        let me = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        var directory = (me as NSString).deletingLastPathComponent
        // The test bundle may be a directory (…/cairnPackageTests.xctest/…) inside the build directory.
        for _ in 0..<4 {
            let candidate = (directory as NSString).appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            directory = (directory as NSString).deletingLastPathComponent
        }
        throw TimedOut(description: "\(name) is not built next to the tests (run swift build --build-tests first)")
    }

    public init(_ name: String, _ arguments: [String], log: String) throws {
        logPath = log
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.executableURL = URL(fileURLWithPath: try Self.executable(name))
        process.arguments = arguments
        process.standardOutput = output
        process.standardError = output
        try process.run()
    }

    /// A test that failed before stopping its child leaves no process behind (a failed kill -9 fault test once left
    /// its agent running, retrying a hub long gone, through every test after it).
    deinit {
        if process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL) }
    }

    public var isRunning: Bool { process.isRunning }
    public var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// The names of the process's threads, from /proc (empty once it has exited).
    public var threadNames: [String] {
        let tasks = "/proc/\(process.processIdentifier)/task"
        let ids = (try? FileManager.default.contentsOfDirectory(atPath: tasks)) ?? []
        return ids.compactMap { try? String(contentsOfFile: "\(tasks)/\($0)/comm", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) }
    }

    /// SIGTERM, then waits up to `timeout` seconds for a clean exit (SIGKILL after that); the exit status.
    @discardableResult
    public func terminate(timeout: Double = 10) async throws -> Int32 {
        if process.isRunning { process.terminate() }
        return try await waitForExit(timeout: timeout)
    }

    /// SIGKILL: the process gets no chance to clean up.
    public func kill() async throws {
        if process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL) }
        _ = try? await waitForExit(timeout: 10)
    }

    /// Waits for the process to exit by itself; SIGKILL and an error when it has not within `timeout`.
    public func waitForExit(timeout: Double) async throws -> Int32 {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning {
            if Date() > deadline {
                Foundation.kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                throw TimedOut(description: "\(process.executableURL?.lastPathComponent ?? "child") did not exit within \(timeout)s")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        return process.terminationStatus
    }
}
