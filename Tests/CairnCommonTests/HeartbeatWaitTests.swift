import CairnCommon
import Testing

@Suite struct HeartbeatWaitTests {
    /// Sites that came up together must not beat in step forever: each wait is the interval give or take a tenth,
    /// at random, and on average the interval.
    @Test func `heartbeat waits spread around the interval, never past a tenth of it`() {
        let waits = (0..<1_000).map { _ in HeartbeatResponse.wait(for: 10) }
        #expect(waits.allSatisfy { (9...11).contains($0) })
        #expect(Set(waits).count > 900, "the waits are not spread")
        let mean = waits.reduce(0, +) / Double(waits.count)
        #expect(abs(mean - 10) < 0.1, "mean \(mean)")
        #expect(waits.contains { $0 < 9.5 } && waits.contains { $0 > 10.5 })
    }
}
