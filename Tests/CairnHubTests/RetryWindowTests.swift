@testable import CairnHub
import Testing

@Suite struct RetryWindowTests {
    @Test func `the Retry-After window doubles each overloaded second and halves back once it passes`() {
        var window = RetryWindow()
        let start = ContinuousClock.now
        #expect(window.longest(shed: 1, served: 0, at: start) == 10)
        // Within the second, the window stays what it was.
        #expect(window.longest(shed: 5_000, served: 10, at: start + .milliseconds(500)) == 10)
        // Fewer turned away than served: the usual 10 s.
        #expect(window.longest(shed: 5_001, served: 10_000, at: start + .seconds(1)) == 10)
        // More turned away than served, second after second: 20, 40, … held to five minutes.
        var (shed, served) = (5_001, 10_000)
        var seen = [Int]()
        for second in 2...8 {
            (shed, served) = (shed + 1_400, served + 200)
            seen.append(window.longest(shed: shed, served: served, at: start + .seconds(second)))
        }
        #expect(seen == [20, 40, 80, 160, 300, 300, 300])
        // Kept until the next second has passed.
        #expect(window.longest(shed: shed + 10, served: served + 1_000, at: start + .milliseconds(8_500)) == 300)
        // The hub keeps up: halved each second since.
        #expect(window.longest(shed: shed + 10, served: served + 1_000, at: start + .seconds(9)) == 150)
        #expect(window.longest(shed: shed + 11, served: served + 3_000, at: start + .seconds(12)) == 18)
        #expect(window.longest(shed: shed + 12, served: served + 4_000, at: start + .seconds(13)) == 10)
    }
}
