import CairnHub
import Testing

@Suite struct HeartbeatPacingTests {
    @Test func `the interval stays as configured until the fleet outgrows the heartbeats a second`() {
        let pacing = HeartbeatPacing(interval: 10, leaseTimeout: 40, heartbeatsPerSecond: 250)
        #expect(pacing.update(clusters: 0) == 10)
        #expect(pacing.update(clusters: 2_500) == 10)
        #expect(pacing.currentLeaseTimeout == 40)
    }

    @Test func `beyond it, interval and lease stretch together, to whole seconds`() {
        let pacing = HeartbeatPacing(interval: 10, leaseTimeout: 40, heartbeatsPerSecond: 250)
        #expect(pacing.update(clusters: 10_000) == 40)
        #expect(pacing.currentLeaseTimeout == 160)
        #expect(pacing.update(clusters: 10_001) == 41)
        #expect(pacing.currentLeaseTimeout == 164)
    }

    @Test func `a shrinking fleet does not shorten the lease agents were given`() {
        let pacing = HeartbeatPacing(interval: 10, leaseTimeout: 40, heartbeatsPerSecond: 250)
        pacing.update(clusters: 10_000)
        #expect(pacing.update(clusters: 100) == 40)
        #expect(pacing.currentLeaseTimeout == 160)
    }

    @Test func `sub-second intervals are kept while the fleet is small`() {
        let pacing = HeartbeatPacing(interval: 0.5, leaseTimeout: 2, heartbeatsPerSecond: 250)
        #expect(pacing.update(clusters: 3) == 0.5)
        #expect(pacing.currentLeaseTimeout == 2)
    }
}
