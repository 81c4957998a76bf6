@testable import CairnHub
import Testing

@Suite struct RetryWindowTests {
    @Test func `the Retry-After window stretches with the overload and comes back when it passes`() {
        var window = RetryWindow()
        let start = ContinuousClock.now
        #expect(window.longest(shed: 1, served: 0, at: start) == 10)
        // Within the second, the window stays what it was.
        #expect(window.longest(shed: 5_000, served: 10, at: start + .milliseconds(500)) == 10)
        // Fewer turned away than served: the usual 10 s.
        #expect(window.longest(shed: 50, served: 1_000, at: start + .seconds(1)) == 10)
        // Seven times as many turned away as served: 2 × 7 × 10 s.
        #expect(window.longest(shed: 50 + 1_400, served: 1_000 + 200, at: start + .seconds(2)) == 140)
        // Kept until the next second has passed.
        #expect(window.longest(shed: 1_500, served: 1_250, at: start + .milliseconds(2_500)) == 140)
        // A storm far past it is held to five minutes.
        #expect(window.longest(shed: 101_450, served: 1_300, at: start + .seconds(3)) == 300)
        // Once the hub keeps up, back to 10 s.
        #expect(window.longest(shed: 101_460, served: 2_300, at: start + .seconds(4)) == 10)
    }
}
