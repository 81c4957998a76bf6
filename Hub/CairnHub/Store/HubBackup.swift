import CairnCommon
import Foundation
import GRDB

/// One file that restores a hub: the database, copied with SQLite's online backup (consistent while the hub
/// serves and writes), with the PKI and the admin token inside it — agents trust that CA and verify bundles
/// with that signing key, so a hub restored without them could steer nobody.
public enum HubBackup {
    public struct Summary: Sendable, CustomStringConvertible {
        public var clusters: Int
        public var works: Int
        public var files: Int
        public var description: String { "\(clusters) clusters, \(works) works, \(files) PKI and token files" }
    }

    /// Backs up the hub in `stateDirectory` to `destination` (written beside it, then renamed into place).
    public static func backup(stateDirectory: String, to destination: String) throws -> Summary {
        let configuration = HubConfiguration(stateDirectory: stateDirectory)
        guard FileManager.default.fileExists(atPath: configuration.databasePath) else {
            throw CairnError(.notFound, "no hub database in \(stateDirectory)", field: "state-dir")
        }
        let partial = destination + ".partial"
        try? FileManager.default.removeItem(atPath: partial)
        var readOnly = Configuration()
        readOnly.readonly = true
        readOnly.busyMode = .timeout(10)
        let source = try DatabasePool(path: configuration.databasePath, configuration: readOnly)
        let copy = try DatabaseQueue(path: partial)
        try source.backup(to: copy)
        try source.close()
        var files = 0
        try copy.write { db in
            try db.execute(sql: "CREATE TABLE cairn_backup_files (path TEXT PRIMARY KEY, content BLOB NOT NULL)")
            for path in try Self.files(in: configuration) {
                let data = try Data(contentsOf: URL(fileURLWithPath: (stateDirectory as NSString).appendingPathComponent(path)))
                try db.execute(sql: "INSERT INTO cairn_backup_files (path, content) VALUES (?, ?)", arguments: [path, data])
                files += 1
            }
        }
        let summary = try Self.summary(copy, files: files)
        try copy.close()
        chmod(partial, 0o600)
        if FileManager.default.fileExists(atPath: destination) { try FileManager.default.removeItem(atPath: destination) }
        try FileManager.default.moveItem(atPath: partial, toPath: destination)
        return summary
    }

    /// Restores `source` into `stateDirectory`, which no hub may be serving. What was there (database, PKI,
    /// admin token) is moved aside first, into `before-restore-<time>/`.
    public static func restore(stateDirectory: String, from source: String) throws -> Summary {
        let configuration = HubConfiguration(stateDirectory: stateDirectory)
        var readOnly = Configuration()
        readOnly.readonly = true
        let backup: DatabaseQueue
        do {
            backup = try DatabaseQueue(path: source, configuration: readOnly)
            _ = try backup.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM cairn_backup_files") }
        } catch {
            throw CairnError(.invalid, "\(source) is not a cairn-hub backup: \(error)", field: "from")
        }
        try FileManager.default.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let lock = try HubLock(stateDirectory: stateDirectory)
        defer { lock.release() }
        let aside = (stateDirectory as NSString).appendingPathComponent("before-restore-\(Int(Date().timeIntervalSince1970))")
        let fileManager = FileManager.default
        for name in ["hub.sqlite", "hub.sqlite-wal", "hub.sqlite-shm", "pki", "admin-token"] {
            let path = (stateDirectory as NSString).appendingPathComponent(name)
            guard fileManager.fileExists(atPath: path) else { continue }
            try fileManager.createDirectory(atPath: aside, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            try fileManager.moveItem(atPath: path, toPath: (aside as NSString).appendingPathComponent(name))
        }
        let target = try DatabaseQueue(path: configuration.databasePath)
        try backup.backup(to: target)
        let restored: [(String, Data)] = try target.read { db in
            try Row.fetchAll(db, sql: "SELECT path, content FROM cairn_backup_files").map { ($0["path"], $0["content"]) }
        }
        try target.write { db in try db.execute(sql: "DROP TABLE cairn_backup_files") }
        let summary = try Self.summary(target, files: restored.count)
        try target.close()
        chmod(configuration.databasePath, 0o600)
        for (path, content) in restored {
            let full = (stateDirectory as NSString).appendingPathComponent(path)
            try fileManager.createDirectory(
                atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            guard fileManager.createFile(atPath: full, contents: content, attributes: [.posixPermissions: 0o600]) else {
                throw CairnError(.internal, "cannot write \(full)")
            }
        }
        return summary
    }

    /// The PKI files and the admin token, relative to the state directory.
    static func files(in configuration: HubConfiguration) throws -> [String] {
        var result = [String]()
        let pki = configuration.pkiDirectory
        for name in (try? FileManager.default.contentsOfDirectory(atPath: pki)) ?? [] {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: (pki as NSString).appendingPathComponent(name), isDirectory: &isDirectory), !isDirectory.boolValue {
                result.append("pki/" + name)
            }
        }
        if FileManager.default.fileExists(atPath: configuration.adminTokenPath) { result.append("admin-token") }
        return result.sorted()
    }

    static func summary(_ database: some DatabaseReader, files: Int) throws -> Summary {
        try database.read { db in
            Summary(
                clusters: try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM clusters") ?? 0,
                works: try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM works") ?? 0, files: files)
        }
    }
}

/// One hub process per state directory: `serve` holds this lock while it runs, and `restore` refuses to
/// write under a running hub. A POSIX record lock: the kernel drops it when the process dies, even by kill -9.
public final class HubLock: Sendable {
    let descriptor: Int32

    public init(stateDirectory: String) throws {
        let path = (stateDirectory as NSString).appendingPathComponent("hub.lock")
        descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw CairnError(.internal, "cannot open \(path): \(String(cString: strerror(errno)))") }
        var lock = flock()
        lock.l_type = Int16(F_WRLCK)
        lock.l_whence = Int16(SEEK_SET)
        guard fcntl(descriptor, F_SETLK, &lock) == 0 else {
            close(descriptor)
            throw CairnError(.conflict, "a hub is running on \(stateDirectory); stop it first", field: "state-dir")
        }
    }

    public func release() { close(descriptor) }
}
