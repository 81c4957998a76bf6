import CairnTestSupport
import Foundation
import Testing

/// `cairn-hub serve` refuses settings it cannot run with, naming the flag, before it starts anything.
@Suite struct HubCommandTests {
    @Test(arguments: [
        (["--heartbeat-interval", "0"], "heartbeat-interval"),
        // Agents beat every interval give or take a tenth: a lease barely longer than the interval would flap.
        (["--heartbeat-interval", "10", "--lease-timeout", "15"], "lease-timeout"),
    ])
    func `a heartbeat or lease the hub cannot keep is refused, naming the flag`(flags: [String], field: String) async throws {
        let directory = try TemporaryDirectory("hub-flags")
        defer { directory.remove() }
        let hub = try ChildProcess(
            "cairn-hub", ["serve", "--state-dir", directory.appending("hub"), "--listen", "127.0.0.1:0", "--log-level", "error"] + flags,
            log: directory.appending("hub.log"))
        let status = try await hub.waitForExit(timeout: 30)
        #expect(status != 0)
        #expect(hub.log.contains(field), "\(hub.log)")
        #expect(!FileManager.default.fileExists(atPath: directory.appending("hub")), "nothing is created")
    }
}
