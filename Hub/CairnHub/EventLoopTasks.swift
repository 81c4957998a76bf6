import NIOCore
import NIOPosix

/// Where the hub's process runs its Swift tasks.
public enum EventLoopTasks {
    /// Runs Swift concurrency's tasks on NIO's event loops instead of a separate thread pool, so a request is no
    /// longer handed from an event loop thread to a pool thread and back (a thread wake-up each way). Call once,
    /// first thing in `cairn-hub serve`; false where the runtime does not allow it, and then nothing changes. Work
    /// that blocks a thread for long does not belong on a task then: it holds up that loop's connections too (the
    /// hub's writes and long reads go through GRDB's own queues; only reads of a few rows run where they are asked,
    /// `SQLiteHubStore.readHere`). Not for the bench: its simulated sites block threads (child
    /// processes, SQLite), and with 3,000 of them a run stalled.
    @discardableResult
    public static func install() -> Bool {
        NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
    }
}
