import NIOCore
import NIOPosix

/// Where a long-running Cairn process runs its Swift tasks.
public enum EventLoopTasks {
    /// Runs Swift concurrency's tasks on NIO's event loops instead of a separate thread pool, so a request is no
    /// longer handed from an event loop thread to a pool thread and back (a thread wake-up each way). Call once,
    /// first thing in a process that serves many connections (the hub, the bench); false where the runtime does
    /// not allow it, and then nothing changes. Work that blocks a thread for long does not belong on a task then:
    /// it holds up that loop's connections too (SQLite goes through GRDB's own queues).
    @discardableResult
    public static func install() -> Bool {
        NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
    }
}
