import NIOCore

/// How the cairn-agent process sets itself up, once, before anything else runs (its `main`).
public enum AgentProcess {
    /// One event loop for the process's HTTP clients (the hub's connection, the Kubernetes API's) instead of one
    /// per core. The agent holds a connection or two and does its work in tasks, not on the loops; each further loop
    /// is a thread with its own stack and task buffer (NIO reserves room for 4,096 tasks per loop) — on a 16-core
    /// site, fifteen threads that would do nothing. NIO takes this only before its shared event loop group is first
    /// used, and only once (a second call stops the process): call it first thing in `main`, never from a library
    /// or a test.
    public static func prepare() {
        NIOSingletons.groupLoopCountSuggestion = 1
    }
}
