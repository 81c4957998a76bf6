import CairnCommon
import Foundation
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

@Suite struct HeartbeatSkippingTests {
    let beat = Heartbeat(claims: [ClusterClaim(name: "platform", value: "kubernetes")], allocatable: ["cpu": "4"])
    let start = ContinuousClock.now

    func at(_ seconds: Double) -> ContinuousClock.Instant { start + .milliseconds(Int64(seconds * 1000)) }

    /// Left out only when it says nothing new, the hub renews leases on polls, and a poll went within the interval.
    @Test func `a heartbeat is left out only while a recent poll renews the lease and it says nothing new`() {
        var skipping = HeartbeatSkipping()
        #expect(skipping.shouldSend(beat, interval: 10, now: at(0)), "the first heartbeat always goes")
        skipping.sent(beat, answer: HeartbeatResponse(intervalSeconds: 10, pollsRenewLease: true))
        #expect(skipping.shouldSend(beat, interval: 10, now: at(10)), "no poll sent yet")
        skipping.polling(at: at(5))
        #expect(!skipping.shouldSend(beat, interval: 10, now: at(10)), "a poll went 5 s ago")
        #expect(skipping.shouldSend(beat, interval: 10, now: at(15.5)), "the last poll went more than an interval ago")
        var changed = beat
        changed.conditions = [Condition(type: ConditionType.bundleVerified, status: Condition.true, reason: "BundleVerified", message: "revision 2")]
        #expect(skipping.shouldSend(changed, interval: 10, now: at(10)), "something it carries changed")
        skipping.pollFailed()
        #expect(skipping.shouldSend(beat, interval: 10, now: at(10)), "the last poll failed")
        skipping.polling(at: at(9))
        #expect(!skipping.shouldSend(beat, interval: 10, now: at(10)))
        skipping.mustSend()
        #expect(skipping.shouldSend(beat, interval: 10, now: at(10)), "a failed heartbeat, or the hub asked for one")
    }

    @Test func `every heartbeat goes to a hub that does not renew leases on polls`() throws {
        var skipping = HeartbeatSkipping()
        skipping.sent(beat, answer: HeartbeatResponse(intervalSeconds: 10))
        skipping.polling(at: at(9))
        #expect(skipping.shouldSend(beat, interval: 10, now: at(10)))
        #expect(try CairnJSON.decode(HeartbeatResponse.self, from: Data(#"{"intervalSeconds":10}"#.utf8), what: "answer").pollsRenewLease == nil)
    }
}
