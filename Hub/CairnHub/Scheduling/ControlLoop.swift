import CairnCommon
import Logging
import ServiceLifecycle

/// The loop every hub controller runs: a pass, then wait for its signal or the interval, until shutdown.
/// A failed pass is logged and the next one tries again.
enum ControlLoop {
    static func run(name: String, signal: Wakeup, interval: Double, logger: Logger, pass: @escaping @Sendable () async throws -> Void) async {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await pass()
                } catch is CancellationError {
                    return
                } catch {
                    logger.error("controller pass failed", metadata: ["controller": .string(name), "error.message": .string("\(error)")])
                }
                await signal.wait(timeout: .milliseconds(Int64(interval * 1000)))
            }
        }
    }
}
