@testable import CairnAgent
import Testing

/// When the agent gives back its code pages: once after starting, once after each burst of bundles, and only when
/// no bundle came for the quiet time.
@Suite struct CodePagesTests {
    @Test func `pages go back once the agent is quiet, once per burst of bundles`() {
        var pages = CodePages(quiet: 10)
        // Just started: not yet quiet long enough; ask again when it will be.
        var decision = pages.decide(bundles: 0, quietFor: 3)
        #expect(!decision.release && decision.wait == 7)
        decision = pages.decide(bundles: 0, quietFor: 10)
        #expect(decision.release && decision.wait == 10)
        // Nothing new since: nothing to give back, however long it stays quiet.
        decision = pages.decide(bundles: 0, quietFor: 500)
        #expect(!decision.release && decision.wait == 10)
        // Bundles arrived; the last 2 s ago: wait out the rest of the quiet time, then release once.
        decision = pages.decide(bundles: 3, quietFor: 2)
        #expect(!decision.release && decision.wait == 8)
        decision = pages.decide(bundles: 3, quietFor: 10.5)
        #expect(decision.release)
        decision = pages.decide(bundles: 3, quietFor: 30)
        #expect(!decision.release)
    }

    #if os(Linux)
    @Test func `the program's and libraries' pages are given back, and the code runs on`() throws {
        // This test's own process: its program and the Swift libraries are private mappings of files.
        let released = try #require(CodePages.release(), "MADV_PAGEOUT is not available on this kernel")
        #expect(released > 0)
        // What was given back is read again when touched.
        var pages = CodePages(quiet: 1)
        #expect(pages.decide(bundles: 1, quietFor: 2).release)
    }
    #endif
}
