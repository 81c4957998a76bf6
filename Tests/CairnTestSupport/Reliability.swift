import Foundation

/// One row of RELIABILITY.md as a fault test measured it: printed always, and written under
/// $CAIRN_RELIABILITY_DIR when set (`make reliability` gathers the rows into RELIABILITY.md).
public enum Reliability {
    public static func record(fault: String, injected: Int, outcome: String, lost: String) {
        let row = "| \(fault) | \(injected) | \(outcome) | \(lost) |"
        print("reliability: " + row)
        guard let directory = ProcessInfo.processInfo.environment["CAIRN_RELIABILITY_DIR"] else { return }
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let name = fault.lowercased().map { $0.isLetter || $0.isNumber ? $0 : "-" }
        try? (row + "\n").write(toFile: directory + "/" + String(name) + ".md", atomically: true, encoding: .utf8)
    }
}
