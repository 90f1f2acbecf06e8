import RegToken

/// A request of the registry HTTP API v2 (distribution spec), as the proxy understands it.
///
/// The path is parsed strictly: anything that could mean two things to two parsers (`..` or `.`
/// segments, `//`, percent-encoded `/`, `.` or `\`, a NUL, a fragment, repeated query parameters)
/// is refused with 400 and never reaches the registry, rather than normalised. A query with a
/// `;` is refused too (Go drops such a pair, so the registry would not see what the proxy saw).
public struct RegistryRequest: Sendable, Equatable {
    /// The registry API endpoint a path names, with the reference, digest or upload id in it.
    public enum Endpoint: Sendable, Equatable {
        /// `/v2/`: API version check.
        case base
        /// `/v2/_catalog`.
        case catalog
        /// `/v2/<name>/tags/list`.
        case tags
        /// `/v2/<name>/manifests/<reference>`.
        case manifest(reference: String)
        /// `/v2/<name>/blobs/<digest>`.
        case blob(digest: String)
        /// `/v2/<name>/blobs/uploads/` (starts an upload, or mounts with `?mount=&from=`).
        case uploadStart
        /// `/v2/<name>/blobs/uploads/<id>`.
        case upload(id: String)
        /// `/v2/<name>/referrers/<digest>` (OCI 1.1).
        case referrers(digest: String)
    }

    /// The endpoint the path names.
    public var endpoint: Endpoint
    /// The repository name, such as `acme/app`; nil for `/v2/` and the catalog.
    public var repository: String?
    /// For a cross-repository mount: the repository the blob is mounted from.
    public var mountFrom: String?

    /// The namespace: the first segment of the repository name.
    public var namespace: String? { repository.map(Self.firstSegment) }
    /// The namespace of the mount's source repository.
    public var mountFromNamespace: String? { mountFrom.map(Self.firstSegment) }

    /// A repository name up to its first `/` (found on its bytes, not character by character).
    static func firstSegment(_ name: String) -> String {
        guard let slash = name.utf8.firstIndex(of: UInt8(ascii: "/")) else { return name }
        return String(name[..<slash])
    }


    /// Parses a request target (`/v2/acme/app/manifests/v1?x=y`).
    public static func parse(target: String) -> Result<RegistryRequest, RequestError> {
        // On the target's own bytes: a segment is a range of them, decoded into a String of its
        // own only when it holds an escape; the name, reference or digest are the only Strings
        // made (a name with no escape is one slice of the target).
        let bytes = target.utf8.span
        guard bytes.count <= 8192 else { return .failure(.ambiguous("request target is too long")) }
        var q: Int?
        for i in bytes.indices {
            let b = bytes[i]
            if b < 0x21 || b > 0x7E || b == UInt8(ascii: "#") || b == UInt8(ascii: "\\") {
                return .failure(.ambiguous("request target has a character that must not appear in it"))
            }
            if b == UInt8(ascii: "?") && q == nil { q = i }
        }
        let pathEnd = q ?? bytes.count
        // Split on '/' before decoding is splitting after it: an encoded '/' is refused. The
        // segments after `/v2/` are kept; a path that does not start so is refused once every
        // segment has been decoded (an ambiguous path is refused as that first).
        var segments = Segments()
        var segmentStart = 0
        var seen = 0
        var registryPath = true
        for i in 0...pathEnd where i == pathEnd || bytes[i] == UInt8(ascii: "/") {
            let raw = bytes.extracting(segmentStart..<i)
            var segment = Segment(range: segmentStart..<i, decoded: nil)
            if hasEscape(raw) {
                guard let decoded = decodeEscapes(raw) else {
                    return .failure(.ambiguous("path has a percent-encoded '/', '.', '\\\\' or NUL, or a broken escape"))
                }
                segment.decoded = decoded
            }
            switch seen {
            case 0: registryPath = segment.range.isEmpty  // a path starts with '/': the first segment is empty
            case 1: registryPath = registryPath && segment.equals("v2", in: bytes)
            default: segments.append(segment)
            }
            seen += 1
            segmentStart = i + 1
        }
        guard registryPath && seen >= 2 else { return .failure(.notRegistryPath) }
        if segments.count == 0 || segments.count == 1 && segments[0].range.isEmpty {
            return .success(RegistryRequest(endpoint: .base, repository: nil, mountFrom: nil))
        }
        // Trailing slash only on uploads/ (POST /v2/<name>/blobs/uploads/); empty segments elsewhere are '//'.
        let trailingSlash = segments[segments.count - 1].range.isEmpty
        if trailingSlash { segments.removeLast() }
        for i in 0..<segments.count {
            // (An escape never decodes to '.': only a segment without one can be '.' or '..'.)
            let segment = segments[i]
            if segment.range.isEmpty { return .failure(.ambiguous("path has '//'")) }
            if segment.equals(".", in: bytes) || segment.equals("..", in: bytes) { return .failure(.ambiguous("path has a '.' or '..' segment")) }
        }
        var query: [String: String] = [:]
        if let q {
            var rawQuery: [UInt8] = []
            rawQuery.reserveCapacity(bytes.count - q - 1)
            for i in (q + 1)..<bytes.count { rawQuery.append(bytes[i]) }
            switch parseQuery(rawQuery) {
            case .success(let parsed): query = parsed
            case .failure(let f): return .failure(f)
            }
        }

        // (A constant from here on, moved rather than copied: the functions below do not box it.)
        let segmentsRead = consume segments
        let n = segmentsRead.count
        func equals(_ index: Int, _ text: StaticString) -> Bool { segmentsRead[index].equals(text, in: bytes) }
        if n == 1 && equals(0, "_catalog") && !trailingSlash {
            return .success(RegistryRequest(endpoint: .catalog, repository: nil, mountFrom: nil))
        }
        func text(_ index: Int) -> String { segmentsRead[index].text(in: target) }
        func name(_ count: Int) -> Result<String, RequestError> {
            guard count >= 1 else { return .failure(.notRegistryPath) }
            var escaped = false
            for i in 0..<count {
                guard segmentsRead[i].isNameComponent(in: bytes) else {
                    return .failure(.invalidName("invalid repository name: use lowercase letters, digits and separators"))
                }
                if segmentsRead[i].decoded != nil { escaped = true }
            }
            let joined: String
            if !escaped {
                // The parts and the single '/' between them, as the target spells them.
                joined = Segment(range: segmentsRead[0].range.lowerBound..<segmentsRead[count - 1].range.upperBound, decoded: nil).text(in: target)
            } else {
                var appended = segmentsRead[0].text(in: target)
                for i in 1..<count {
                    appended += "/"
                    appended += segmentsRead[i].text(in: target)
                }
                joined = appended
            }
            guard joined.utf8.count <= 255 else { return .failure(.invalidName("repository name is longer than 255 characters")) }
            return .success(joined)
        }
        func make(_ endpoint: Endpoint, nameCount: Int, mountFrom: String? = nil) -> Result<RegistryRequest, RequestError> {
            name(nameCount).map { RegistryRequest(endpoint: endpoint, repository: $0, mountFrom: mountFrom) }
        }

        if trailingSlash {
            // Only /v2/<name>/blobs/uploads/ ends with a slash.
            guard n >= 3, equals(n - 2, "blobs"), equals(n - 1, "uploads") else {
                return .failure(.ambiguous("path has a trailing '/'"))
            }
            return uploadStart(nameCount: n - 2, query: query, name: name)
        }
        if n >= 3, equals(n - 2, "tags"), equals(n - 1, "list") {
            return make(.tags, nameCount: n - 2)
        }
        if n >= 3, equals(n - 2, "manifests") {
            let ref = text(n - 1)
            guard isTag(ref) || isDigest(ref) else { return .failure(.invalidName("invalid manifest reference: a tag or a digest")) }
            return make(.manifest(reference: ref), nameCount: n - 2)
        }
        if n >= 4, equals(n - 3, "blobs"), equals(n - 2, "uploads") {
            let id = text(n - 1)
            guard isUploadID(id) else { return .failure(.invalidName("invalid upload id")) }
            return make(.upload(id: id), nameCount: n - 3)
        }
        if n >= 3, equals(n - 2, "blobs"), equals(n - 1, "uploads") {
            return uploadStart(nameCount: n - 2, query: query, name: name)
        }
        if n >= 3, equals(n - 2, "blobs") {
            let digest = text(n - 1)
            guard isDigest(digest) else { return .failure(.invalidName("invalid digest")) }
            return make(.blob(digest: digest), nameCount: n - 2)
        }
        if n >= 3, equals(n - 2, "referrers") {
            let digest = text(n - 1)
            guard isDigest(digest) else { return .failure(.invalidName("invalid digest")) }
            return make(.referrers(digest: digest), nameCount: n - 2)
        }
        return .failure(.notRegistryPath)
    }

    /// The segments of a path after `/v2/`, in order: the first 8 held in place (a repository
    /// name and an endpoint take a handful: no allocation a request), more in an array. Held as
    /// ranges (plain values: made, copied and let go of without a reference count); the text of
    /// a segment that had an escape is kept apart.
    private struct Segments {
        static let inPlace = 8
        private struct Held {
            var range: Range<Int>
            /// Where the segment's decoded text is in ``decoded``; -1 for a segment without escape.
            var decodedAt: Int
        }
        private var first = InlineArray<8, Held>(repeating: Held(range: 0..<0, decodedAt: -1))
        private var more: [Held] = []
        private var decoded: [String] = []
        private(set) var count = 0

        subscript(index: Int) -> Segment {
            let held = index < Self.inPlace ? first[index] : more[index - Self.inPlace]
            return Segment(range: held.range, decoded: held.decodedAt < 0 ? nil : decoded[held.decodedAt])
        }

        mutating func append(_ segment: Segment) {
            var held = Held(range: segment.range, decodedAt: -1)
            if let text = segment.decoded {
                held.decodedAt = decoded.count
                decoded.append(text)
            }
            if count < Self.inPlace { first[count] = held } else { more.append(held) }
            count += 1
        }

        /// (Its decoded text, if it had one, stays in ``decoded``, where no segment points to it.)
        mutating func removeLast() {
            count -= 1
            if count >= Self.inPlace { more.removeLast() }
        }
    }

    /// A path segment: its bytes in the target, and its text when it held an escape.
    private struct Segment {
        var range: Range<Int>
        /// The percent-decoded text (only for a segment with an escape).
        var decoded: String?

        /// Whether the segment's text is `literal` (ASCII).
        func equals(_ literal: StaticString, in bytes: Span<UInt8>) -> Bool {
            if let decoded { return decoded.utf8.elementsEqual(UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount)) }
            guard range.count == literal.utf8CodeUnitCount else { return false }
            let l = literal.utf8Start
            for k in 0..<range.count where bytes[range.lowerBound + k] != l[k] { return false }
            return true
        }

        /// The segment's text (a slice of the target, or its decoded text).
        func text(in target: String) -> String {
            if let decoded { return decoded }
            return target.utf8.span.extracting(range).withUnsafeBufferPointer { String(decoding: $0, as: UTF8.self) }
        }

        /// ``RegistryRequest/isNameComponent(_:)`` of the segment's text.
        func isNameComponent(in bytes: Span<UInt8>) -> Bool {
            if let decoded { return RegistryRequest.isNameComponent(decoded) }
            return bytes.extracting(range).withUnsafeBufferPointer { TokenClaims.isNameComponent(bytes: $0) }
        }
    }

    private static func uploadStart(nameCount: Int, query: [String: String], name: (Int) -> Result<String, RequestError>) -> Result<RegistryRequest, RequestError> {
        name(nameCount).flatMap { repo in
            var from: String? = nil
            if let mount = query["mount"] {
                guard isDigest(mount) else { return .failure(.invalidName("invalid mount digest")) }
                guard let f = query["from"] else { return .success(RegistryRequest(endpoint: .uploadStart, repository: repo, mountFrom: nil)) }
                guard isRepositoryName(f) else {
                    return .failure(.invalidName("invalid mount source repository name"))
                }
                from = f
            }
            return .success(RegistryRequest(endpoint: .uploadStart, repository: repo, mountFrom: from))
        }
    }

    /// Whether a path segment holds a `%`.
    static func hasEscape(_ raw: Span<UInt8>) -> Bool {
        for i in raw.indices where raw[i] == UInt8(ascii: "%") { return true }
        return false
    }

    /// Percent-decodes a path segment that holds an escape, refusing encoded '/', '.', '\', '%'
    /// and NUL, other control bytes and bytes from 0x80, and broken escapes.
    static func decodeEscapes(_ raw: Span<UInt8>) -> String? {
        var out: [UInt8] = []
        out.reserveCapacity(raw.count)
        var i = 0
        while i < raw.count {
            let c = raw[i]
            if c == UInt8(ascii: "%") {
                guard i + 2 < raw.count, let v = hexPair(raw[i + 1], raw[i + 2]) else { return nil }
                if v == UInt8(ascii: "/") || v == UInt8(ascii: ".") || v == UInt8(ascii: "\\") || v == 0 || v == UInt8(ascii: "%") || v >= 0x80 || v < 0x20 {
                    return nil
                }
                out.append(v)
                i += 3
            } else {
                out.append(c)
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func hexPair(_ a: UInt8, _ b: UInt8) -> UInt8? {
        guard let x = HTTPBytes.hexValue(a), let y = HTTPBytes.hexValue(b) else { return nil }
        return x << 4 | y
    }

    /// `a=1&b=2`, percent-decoded ('+' is a space). A repeated parameter is ambiguous.
    static func parseQuery(_ raw: [UInt8]) -> Result<[String: String], RequestError> {
        var out: [String: String] = [:]
        guard !raw.isEmpty else { return .success(out) }
        // Go's url.ParseQuery drops a pair with a ';' in it (since Go 1.17): the registry would
        // not see a parameter the proxy saw.
        if raw.contains(UInt8(ascii: ";")) { return .failure(.ambiguous("query has a ';'")) }
        for pair in raw.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            let eq = pair.firstIndex(of: UInt8(ascii: "="))
            guard let key = decodeQueryComponent(Array(pair[pair.startIndex..<(eq ?? pair.endIndex)])),
                  let value = decodeQueryComponent(eq.map { Array(pair[($0 + 1)...]) } ?? []) else {
                return .failure(.ambiguous("query has a broken escape"))
            }
            guard out.updateValue(value, forKey: key) == nil else {
                return .failure(.ambiguous("query parameter '\(RequestHead.printable(key))' is repeated"))
            }
        }
        return .success(out)
    }

    static func decodeQueryComponent(_ raw: [UInt8]) -> String? {
        var out: [UInt8] = []
        var i = 0
        while i < raw.count {
            if raw[i] == UInt8(ascii: "%") {
                guard i + 2 < raw.count, let v = hexPair(raw[i + 1], raw[i + 2]), v != 0 else { return nil }
                out.append(v)
                i += 3
            } else {
                out.append(raw[i] == UInt8(ascii: "+") ? 0x20 : raw[i])
                i += 1
            }
        }
        return String(validating: out, as: UTF8.self)
    }

    /// A repository name component: `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`.
    public static func isNameComponent(_ s: String) -> Bool { TokenClaims.isNameComponent(s) }

    /// Whether `name` is a repository name of the distribution grammar: path components of
    /// lowercase letters, digits and separators, joined by `/`, at most 255 bytes.
    public static func isRepositoryName(_ name: String) -> Bool {
        guard name.utf8.count <= 255 else { return false }
        return name.split(separator: "/", omittingEmptySubsequences: false).allSatisfy { isNameComponent(String($0)) }
    }

    /// A tag: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
    static func isTag(_ s: String) -> Bool {
        let b = s.utf8.span
        guard !b.isEmpty, b.count <= 128 else { return false }
        func word(_ c: UInt8) -> Bool { (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == UInt8(ascii: "_") }
        guard word(b[0]) else { return false }
        for i in 1..<b.count where !(word(b[i]) || b[i] == UInt8(ascii: ".") || b[i] == UInt8(ascii: "-")) { return false }
        return true
    }

    /// A digest: `algorithm:encoded`, algorithm `[a-z0-9]+([+._-][a-z0-9]+)*`, encoded `[a-zA-Z0-9=_-]+`.
    static func isDigest(_ s: String) -> Bool {
        let b = Array(s.utf8)
        guard let colon = b.firstIndex(of: UInt8(ascii: ":")), colon > 0, colon < b.count - 1, b.count <= 256 else { return false }
        let alg = b[..<colon], enc = b[(colon + 1)...]
        func alnum(_ c: UInt8) -> Bool { (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x7A) }
        guard let f = alg.first, alnum(f), let l = alg.last, alnum(l) else { return false }
        guard alg.allSatisfy({ alnum($0) || $0 == UInt8(ascii: "+") || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }) else { return false }
        return enc.allSatisfy { alnum($0) || ($0 >= 0x41 && $0 <= 0x5A) || $0 == UInt8(ascii: "=") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }
    }

    /// An upload id: `[A-Za-z0-9_=-]+` (distribution uses UUIDs).
    static func isUploadID(_ s: String) -> Bool {
        let b = Array(s.utf8)
        return !b.isEmpty && b.count <= 256 && b.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == UInt8(ascii: "_") || c == UInt8(ascii: "=") || c == UInt8(ascii: "-")
        }
    }
}

/// Why a request target was refused before any credential was looked at.
///
/// Equality is on ``code`` only.
public struct RequestError: CodedError {
    /// The class of failure, stable across releases (new codes may be added).
    public struct ErrorCode: Sendable, Hashable, CustomStringConvertible {
        let name: String
        /// 400: the path or query could mean two things (to us and to the registry).
        public static let ambiguous = ErrorCode(name: "ambiguous")
        /// 400: a repository name or reference outside the distribution grammar.
        public static let invalidName = ErrorCode(name: "invalid_name")
        /// 404: not a registry API path.
        public static let notRegistryPath = ErrorCode(name: "not_registry_path")
        /// 400: a token server scope that is not `type:name:actions`.
        public static let invalidScope = ErrorCode(name: "invalid_scope")
        /// The stable snake_case name, such as `ambiguous`.
        public var description: String { name }
    }

    /// The class of failure; equality and hashing use it alone.
    public let code: ErrorCode
    /// One line: what in the target was refused.
    public let reason: String

    /// An error of the class `code`, with a one-line reason.
    /// - Parameters:
    ///   - code: the class of failure.
    ///   - reason: what failed and why, in one line.
    public init(_ code: ErrorCode, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    static func ambiguous(_ reason: String) -> RequestError { RequestError(.ambiguous, reason) }
    static func invalidName(_ reason: String) -> RequestError { RequestError(.invalidName, reason) }
    static let notRegistryPath = RequestError(.notRegistryPath, "not a registry API path")

    /// The code and the reason, such as `not_registry_path: not a registry API path`.
    public var description: String { "\(code): \(reason)" }
}
