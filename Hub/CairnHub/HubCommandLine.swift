import CairnCommon

/// Parsing shared by the hub's command line and configuration.
public enum HubCommandLine {
    public static func hostPort(_ text: String) throws -> (String, Int) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            throw CairnError(.invalid, "--listen '\(text)' must be HOST:PORT", field: "listen")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host.isEmpty ? "0.0.0.0" : host, port)
    }
}
