import CairnCommon

/// Runs `body` over `items`, at most `concurrency` at once; the results in the items' order. The first error
/// thrown ends the rest.
func concurrently<Item: Sendable, Result: Sendable>(
    _ items: [Item], atMost concurrency: Int, _ body: @escaping @Sendable (Item) async throws -> Result
) async throws -> [Result] {
    try await withThrowingTaskGroup(of: (Int, Result).self) { group in
        var results = [Result?](repeating: nil, count: items.count)
        var next = 0
        func start() {
            let index = next
            group.addTask { (index, try await body(items[index])) }
            next += 1
        }
        for _ in 0..<min(concurrency, items.count) { start() }
        while let (index, result) = try await group.next() {
            results[index] = result
            if next < items.count { start() }
        }
        return results.map { $0! }
    }
}

/// Waits until `count()` reaches `all` or `timeout` seconds pass, looking every 50 ms; how many made it and how
/// long it took.
func waitFor(all: Int, timeout: Double, _ count: () -> Int) async throws -> (count: Int, seconds: Double) {
    let started = ContinuousClock.now
    while (ContinuousClock.now - started).inSeconds < timeout {
        let now = count()
        if now >= all { return (now, (ContinuousClock.now - started).inSeconds) }
        try await Task.sleep(for: .milliseconds(50))
    }
    return (count(), timeout)
}
