import AsyncHTTPClient
import Synchronization

/// The HTTP client the agent reaches its hub through, replaced by a new one after a large bundle.
///
/// A connection keeps the buffers a burst grew for the rest of its life: after kube-prometheus's 380 KiB bundle,
/// NIOSSL's decrypt buffer at 512 KiB and NIOHTTP2's frame decoder's at 256 KiB — ~0.8 MB of an idle agent's 8 MiB
/// budget, held for a bundle that came once. So after one (`AgentConfiguration.freshConnectionAfter`) the agent's
/// calls move to a new client, whose connection starts small, and the old client is shut down — its connection with
/// it — as soon as the last call begun on it has ended. Every call takes the current client when it begins
/// (`call(_:)`), so none is begun on one being replaced. AsyncHTTPClient has no way to drop one connection and keep
/// the client.
final class HubConnections: Sendable {
    private struct State {
        var current: HTTPClient
        /// Calls under way, by client; a client with none is absent.
        var calls: [ObjectIdentifier: Int] = [:]
        /// Replaced clients with calls still under way.
        var retiring: [HTTPClient] = []
        /// Shutdowns of replaced clients under way (each removes itself when done), by number.
        var closing: [Int: Task<Void, Never>] = [:]
        var closesBegun = 0
    }

    private let configuration: HTTPClient.Configuration?
    private let state: Mutex<State>

    /// Connections of the agent's own: `renew()` replaces them and `shutdown()` ends them.
    init() {
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(10))
        self.configuration = configuration
        state = Mutex(State(current: HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)))
    }

    /// Calls through `client` alone, which its owner shuts down: never replaced.
    init(using client: HTTPClient) {
        configuration = nil
        state = Mutex(State(current: client))
    }

    /// Runs `body` with the current client; a client replaced meanwhile is shut down once its last call has ended.
    func call<T>(_ body: (HTTPClient) async throws -> T) async throws -> T {
        let client = state.withLock { state in
            state.calls[ObjectIdentifier(state.current), default: 0] += 1
            return state.current
        }
        defer { ended(client) }
        return try await body(client)
    }

    private func ended(_ client: HTTPClient) {
        state.withLock { state in
            let id = ObjectIdentifier(client)
            let left = (state.calls[id] ?? 1) - 1
            state.calls[id] = left > 0 ? left : nil
            guard left <= 0, let index = state.retiring.firstIndex(where: { $0 === client }) else { return }
            state.retiring.remove(at: index)
            close(client, &state)
        }
    }

    /// Shuts `client` down in a task of its own, kept in `state` until done. (Called under the lock, which the task
    /// takes to remove itself: it cannot be done before it is kept.)
    private func close(_ client: HTTPClient, _ state: inout State) {
        let number = state.closesBegun
        state.closesBegun += 1
        state.closing[number] = Task {
            try? await client.shutdown()
            self.state.withLock { _ = $0.closing.removeValue(forKey: number) }
        }
    }

    /// Moves later calls to a new client; the one it replaces is shut down once no call is under way on it (at
    /// once if none is). Does nothing for a client not the agent's own.
    func renew() {
        guard let configuration else { return }
        let fresh = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        state.withLock { state in
            let old = state.current
            state.current = fresh
            if state.calls[ObjectIdentifier(old)] == nil {
                close(old, &state)
            } else {
                state.retiring.append(old)
            }
        }
    }

    /// Shuts every client of the agent's own down, the current one too: the agent is stopping.
    func shutdown() async {
        guard configuration != nil else { return }
        let (clients, closing) = state.withLock { state in
            defer { state.retiring = [] }
            return ([state.current] + state.retiring, Array(state.closing.values))
        }
        for client in clients { try? await client.shutdown() }
        for task in closing { await task.value }
    }
}
