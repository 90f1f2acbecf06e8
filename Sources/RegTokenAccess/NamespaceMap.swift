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

    /// The map `owners` (namespace → account) as given, unchecked (``parse(_:)`` checks names), or
    /// with `nil`, each account owning the namespace of its own name.
    public init(owners: [String: String]?) {
        self.owners = owners
    }

    /// The owning account of `namespace`, or nil when the namespace is unknown.
    public func owner(of namespace: String) -> String? {
        guard let owners else { return namespace }
        return owners[namespace]
    }

    /// The number of namespaces listed, or `nil` when each account owns the namespace of its own name.
    public var count: Int? { owners?.count }

    /// Parses the file's text.
    public static func parse(_ text: String) throws(NamespaceMapError) -> NamespaceMap {
        var owners: [String: String] = [:]
        for (n, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.prefix { $0 != "#" }.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            if line.isEmpty { continue }
            guard line.count == 2 else {
                throw NamespaceMapError(.malformed, "line \(n + 1): expected 'namespace account'")
            }
            let ns = String(line[0]), account = String(line[1])
            guard RegistryRequest.isNameComponent(ns) else {
                throw NamespaceMapError(.malformed, "line \(n + 1): '\(ns.prefix(64))' is not a namespace (lowercase letters, digits, separators)")
            }
            guard (try? TokenClaims(account: account, region: "r", scope: .pull, issuedAt: 0, expiresAt: nil).validate()) != nil else {
                throw NamespaceMapError(.malformed, "line \(n + 1): '\(account.prefix(64))' is not an account name")
            }
            guard owners.updateValue(account, forKey: ns) == nil else {
                throw NamespaceMapError(.malformed, "line \(n + 1): namespace '\(ns)' is listed twice")
            }
        }
        return NamespaceMap(owners: owners)
    }

    /// Reads and parses the file at `path`.
    public static func load(path: String) throws(NamespaceMapError) -> NamespaceMap {
        let bytes: [UInt8]
        do { bytes = try AtomicFile.read(path, limit: 16 << 20, trust: .owned) } catch {
            throw NamespaceMapError(.io, "cannot read namespaces file: \(error)")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw NamespaceMapError(.malformed, "namespaces file \(path) is not UTF-8 text")
        }
        do { return try parse(text) } catch {
            throw NamespaceMapError(.malformed, "\(path): \(error.reason)")
        }
    }
}

/// Why a namespace map (a namespaces file, or a signed map from the issuer) was refused; the map
/// in force stays.
///
/// Equality is on ``code`` only.
public struct NamespaceMapError: CodedError {
    /// The class of failure, stable across releases (new codes may be added).
    public struct ErrorCode: Sendable, Hashable, CustomStringConvertible {
        let name: String
        /// Not a namespace map: a bad line, name, JSON, JWS type, or too large.
        public static let malformed = ErrorCode(name: "malformed")
        /// A signed map whose signature does not verify with the key ring.
        public static let badSignature = ErrorCode(name: "bad_signature")
        /// The file could not be read.
        public static let io = ErrorCode(name: "io")
        /// The stable snake_case name, such as `malformed`.
        public var description: String { name }
    }

    /// The class of failure; equality and hashing use it alone.
    public let code: ErrorCode
    /// One line: why the map was refused, with the line number for a namespaces file.
    public let reason: String

    /// An error of the class `code`, with a one-line reason.
    /// - Parameters:
    ///   - code: the class of failure.
    ///   - reason: what failed and why, in one line.
    public init(_ code: ErrorCode, _ reason: String) {
        self.code = code
        self.reason = reason
    }

}
