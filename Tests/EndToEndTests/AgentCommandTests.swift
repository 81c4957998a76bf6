import CairnTestSupport
import Foundation
import Testing

/// `cairn-agent run` refuses settings it cannot run with, naming the field, before it enrols or writes anything.
@Suite struct AgentCommandTests {
    @Test(arguments: [
        (["--release-code-after=-1"], "", "releaseCodeAfter"),
        ([], "releaseCodeAfter: -5\n", "releaseCodeAfter"),
        ([], "requestTimeout: 0\n", "requestTimeout"),
    ])
    func `a setting the agent cannot run with is refused, naming it`(flags: [String], file: String, field: String) async throws {
        let directory = try TemporaryDirectory("agent-flags")
        defer { directory.remove() }
        let config = directory.appending("agent.yaml")
        try ("hub: https://127.0.0.1:1\ntoken: unused\nname: c1\n" + file).write(toFile: config, atomically: true, encoding: .utf8)
        let agent = try ChildProcess(
            "cairn-agent", ["run", "--config", config, "--state-dir", directory.appending("state"), "--log-level", "error"] + flags,
            log: directory.appending("agent.log"))
        let status = try await agent.waitForExit(timeout: 30)
        #expect(status != 0)
        #expect(agent.log.contains(field), "\(agent.log)")
        #expect(!FileManager.default.fileExists(atPath: directory.appending("state")), "nothing is created")
    }
}
