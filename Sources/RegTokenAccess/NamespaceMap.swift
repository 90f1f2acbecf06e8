import RegToken

/// Which account owns each namespace (the first segment of a repository name).
///
/// The file is one `namespace account` pair a line; `#` starts a comment; blank lines are
/// ignored. A namespace listed twice, or a name outside the grammar, makes the whole file
/// invalid (and a running proxy keeps the map it had). Without a file, each account owns the
/// namespace of its own name and nothing else.
public struct NamespaceMap: Sendable, Equatable {
    /// Namespace → account; nil when each account owns the namespace of its own name.
    public let owners: [String: String]?

    /// Each account owns the namespace named after it.
    public static let accountNamed = NamespaceMap(owners: nil)

    public init(owners: [String: String]?) {
        self.owners = owners
    }

    /// The owning account of `namespace`, or nil when the namespace is unknown.
    public func owner(of namespace: String) -> String? {
        guard let owners else { return namespace }
        return owners[namespace]
    }

    public var count: Int? { owners?.count }

    public struct Invalid: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    /// Parses the file's text.
    public static func parse(_ text: String) throws(Invalid) -> NamespaceMap {
        var owners: [String: String] = [:]
        for (n, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.prefix { $0 != "#" }.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            if line.isEmpty { continue }
            guard line.count == 2 else {
                throw Invalid(description: "line \(n + 1): expected 'namespace account'")
            }
            let ns = String(line[0]), account = String(line[1])
            guard RegistryRequest.isNameComponent(ns) else {
                throw Invalid(description: "line \(n + 1): '\(ns.prefix(64))' is not a namespace (lowercase letters, digits, separators)")
            }
            guard (try? TokenClaims(account: account, region: "r", scope: .pull, issuedAt: 0, expiresAt: nil).validate()) != nil else {
                throw Invalid(description: "line \(n + 1): '\(account.prefix(64))' is not an account name")
            }
            guard owners.updateValue(account, forKey: ns) == nil else {
                throw Invalid(description: "line \(n + 1): namespace '\(ns)' is listed twice")
            }
        }
        return NamespaceMap(owners: owners)
    }

    /// Reads and parses the file at `path`.
    public static func load(path: String) throws(Invalid) -> NamespaceMap {
        let bytes: [UInt8]
        do { bytes = try AtomicFile.read(path, limit: 16 << 20, trust: .owned) } catch {
            throw Invalid(description: "cannot read namespaces file: \(error)")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw Invalid(description: "namespaces file \(path) is not UTF-8 text")
        }
        do { return try parse(text) } catch {
            throw Invalid(description: "\(path): \(error.description)")
        }
    }
}
