import AsyncHTTPClient

/// Runs `body` with its own HTTP client and shuts the client down however `body` ends, waiting at most 30 s for it.
/// A debug build of AsyncHTTPClient stops the process when a client is released still running, so a test that threw
/// between making a client and shutting it down took the whole test run down with it instead of failing alone.
public func withHTTPClient<T: Sendable>(
    configuration: HTTPClient.Configuration = .init(), _ body: (HTTPClient) async throws -> T
) async throws -> T {
    let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    let result: Result<T, any Error>
    do { result = .success(try await body(http)) } catch { result = .failure(error) }
    let shutdown = Task { try await http.shutdown() }
    let stopped = try await outcome(of: shutdown, within: 30, "the HTTP client did not shut down")
    let value = try result.get()
    try stopped.get()
    return value
}
