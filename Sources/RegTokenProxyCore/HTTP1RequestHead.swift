@_spi(HTTPBytes) import RegTokenAccess

/// A request head read straight from the bytes a client sent (RFC 9112 §2–§5), strictly: the
/// first piece of a request path below NIOHTTP1. SwiftNIO's HTTP/1 codecs alone, doing nothing
/// else, run at 0.78 of nginx on the proxy benchmark (BENCHMARKS.md, "Where the gap is"), so the
/// proxy's throughput target needs its own HTTP layer; this reader is its request side, checked
/// against NIOHTTP1's decoder (llhttp) by a differential test. ``HTTP1ServerCodec`` runs it on
/// every client connection. Not API (`@_spi(Benchmarks)`: the benchmarks time it beside
/// NIOHTTP1's decoder).
///
/// What it takes (anything else is an error, never a guess):
/// - Empty lines (CRLF) before the request line are skipped (RFC 9112 §2.2).
/// - The request line is `method SP target SP version CRLF`: the method one or more token
///   characters (any token: llhttp reads only the methods it knows, and the access decision
///   answers 405 to those the registry API does not have), the target a path (`/` then the
///   characters RFC 3986 allows in one, unescaped: letters, digits, `-._~:/?#[]@!$&'()*+,;=%`;
///   the registry API has no other form of target, and the proxy writes only those upstream),
///   the version exactly
///   `HTTP/1.1` or `HTTP/1.0` (another `HTTP/d.d`: 505).
/// - Each field line is `name ":" OWS value OWS CRLF`: the name one or more token characters,
///   with nothing between it and the colon; the value any of tab, space, visible ASCII and bytes
///   from 0x80 (UTF-8 or obs-text), without the optional whitespace around it.
/// - Lines end with CRLF: a CR without LF, an LF without CR, any other control byte, and
///   continuation lines (obs-fold, a line starting with a space or tab) are errors (400).
/// - The head, empty lines before it included, is at most `limit` bytes (431).
///
/// Framing (`Content-Length`, `Transfer-Encoding`) is not this reader's concern: the forwarding
/// rules of `RequestHead` decide it from the fields, as they do for NIOHTTP1's heads.
@_spi(Benchmarks) public struct HTTP1RequestHead: Sendable, Equatable {
    /// Byte ranges into the buffer the head was read from.
    public var method: Range<Int>
    public var target: Range<Int>
    /// 1 for HTTP/1.1, 0 for HTTP/1.0.
    public var minorVersion: Int
    public var fields: [Field]
    /// Where its field lines start (the byte after the request line's CRLF): they run to
    /// ``length``, the empty line that ends the head included.
    public var fieldsStart: Int
    /// The bytes the head took, empty lines before it and the empty line that ends it included:
    /// where the body, or the next request, starts.
    public var length: Int

    public struct Field: Sendable, Equatable {
        public var name: Range<Int>
        /// Without the optional whitespace around it.
        public var value: Range<Int>
    }
}

/// Why bytes are not a request head: the status to answer with, and a message for the client
/// and the access log.
@_spi(Benchmarks) public struct HTTP1HeadError: Error, Equatable {
    public var status: Int
    public var message: String
}

/// Finds and reads request heads in the bytes of a connection. It remembers how far it has
/// looked for the end of a head, so a head that arrives a few bytes at a time is scanned once,
/// not once per read.
@_spi(Benchmarks) public struct HTTP1RequestHeadReader: Sendable {
    private var scanner: HTTP1HeadScanner
    /// The fields' storage, used again for each head (see ``HTTP1HeadScanner/fields(_:from:into:)``).
    private var fields: [HTTP1RequestHead.Field] = []

    /// The largest head taken, in bytes.
    public var limit: Int { scanner.limit }

    public init(limit: Int) {
        scanner = HTTP1HeadScanner(limit: limit, isRequest: true)
    }

    /// Reads the head at the start of `bytes`: what the connection has sent since the previous
    /// head and its body, the bytes of the previous call included (more may have come).
    /// - Returns: the head, or nil while it is incomplete.
    /// - Throws: ``HTTP1HeadError`` when the bytes cannot start a request head, or the head is
    ///   larger than ``limit``. The connection cannot be read further: answer and close.
    public mutating func read(_ bytes: UnsafeRawBufferPointer) throws(HTTP1HeadError) -> HTTP1RequestHead? {
        guard let end = try scanner.scan(bytes) else { return nil }
        return try Self.parse(bytes, end: end, fields: &fields)
    }

    /// Reads the complete head `bytes[..<end]`, which ends with an empty line and has only CRLF
    /// line ends.
    ///
    /// Every byte is read through `b(i)`, which answers NUL past `end`: a NUL stops every loop
    /// below and fails every check after it, so even bytes that broke the scan's guarantees
    /// (a caller that did not pass the same bytes again) end in an error, never a read past the
    /// head.
    private static func parse(_ bytes: UnsafeRawBufferPointer, end: Int, fields: inout [HTTP1RequestHead.Field]) throws(HTTP1HeadError) -> HTTP1RequestHead {
        let head = UnsafeRawBufferPointer(rebasing: bytes[..<end])
        var i = 0
        while i < head.count && head[i] == 0x0D { i += 2 }  // empty lines before the request line
        let line = try requestLine(head, from: i)
        try HTTP1HeadScanner.fields(head, from: line.end, into: &fields)
        return HTTP1RequestHead(method: line.method, target: line.target, minorVersion: line.minor, fields: fields, fieldsStart: line.end, length: end)
    }

    /// Reads a head whose field lines are exactly `fieldLines` (those of the connection's
    /// previous head, the empty line that ends them included), without looking for its end or
    /// reading its fields again: a client on a keep-alive connection sends the same fields,
    /// byte for byte, with every request. The request line is read by the rules of
    /// ``read(_:)``; the field lines are compared in constant time (they hold credentials).
    /// - Returns: the head (its ``HTTP1RequestHead/fields`` empty: they are the previous
    ///   head's), or nil when the bytes are not such a head, or not yet all of one: then
    ///   ``read(_:)`` reads them (and says what is wrong with them, if anything is).
    public mutating func readRepeated(_ bytes: UnsafeRawBufferPointer, fieldLines: UnsafeRawBufferPointer) -> HTTP1RequestHead? {
        var i = 0
        while i + 1 < bytes.count && bytes[i] == 0x0D && bytes[i + 1] == 0x0A { i += 2 }  // empty lines before the request line
        guard let line = try? Self.requestLine(bytes, from: i) else { return nil }
        let end = line.end + fieldLines.count
        guard end <= bytes.count, end <= scanner.limit,
              HTTPBytes.sameBytes(UnsafeRawBufferPointer(rebasing: bytes[line.end..<end]), fieldLines) else { return nil }
        scanner = HTTP1HeadScanner(limit: scanner.limit, isRequest: true)  // this head is read: the next starts after it
        return HTTP1RequestHead(method: line.method, target: line.target, minorVersion: line.minor, fields: [], fieldsStart: line.end, length: end)
    }

    /// The request line that starts at `start`: `method SP target SP version CRLF`. Bytes past
    /// `head` read as NUL, which fails every check.
    /// - Returns: its parts, and where the line after it starts.
    private static func requestLine(_ head: UnsafeRawBufferPointer, from start: Int) throws(HTTP1HeadError) -> (method: Range<Int>, target: Range<Int>, minor: Int, end: Int) {
        func bad(_ message: String) -> HTTP1HeadError { HTTP1HeadError(status: 400, message: message) }
        func b(_ i: Int) -> UInt8 { i < head.count ? head[i] : 0 }
        var i = start
        let end = head.count

        let methodStart = i
        while HTTPBytes.isTokenCharacter(b(i)) { i += 1 }
        guard i > methodStart else { throw bad("the request line does not start with a method") }
        guard b(i) == 0x20 else { throw bad("the method is not followed by a single space") }
        let method = methodStart..<i
        i += 1

        let targetStart = i
        guard b(i) == UInt8(ascii: "/") else {
            throw bad(b(i) == 0x20 ? "the request line has more than one space after the method" : "the request target is not a path starting with '/'")
        }
        while HTTP1Wire.isTargetCharacter(b(i)) { i += 1 }
        guard b(i) == 0x20 else { throw bad("the request target has a character RFC 3986 does not allow (escape it with %)") }
        let target = targetStart..<i
        i += 1

        let minor: Int
        if HTTP1HeadScanner.matches(head, at: i, "HTTP/1.1\r\n") {
            minor = 1
        } else if HTTP1HeadScanner.matches(head, at: i, "HTTP/1.0\r\n") {
            minor = 0
        } else if HTTP1HeadScanner.matches(head, at: i, "HTTP/"), i + 9 < end, isDigit(b(i + 5)), b(i + 6) == UInt8(ascii: "."), isDigit(b(i + 7)),
                  b(i + 8) == 0x0D {
            throw HTTP1HeadError(status: 505, message: "only HTTP/1.1 and HTTP/1.0 are served")
        } else {
            throw bad("the request line does not end with HTTP/1.1 or HTTP/1.0")
        }
        return (method, target, minor, i + 10)
    }

    private static func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
}

/// What request and response heads share: finding where a head ends (every line ends with CRLF,
/// no control byte anywhere, the first line starts with a token character), and reading its
/// field lines.
struct HTTP1HeadScanner: Sendable {
    /// The largest head taken, in bytes.
    let limit: Int
    /// Request heads (else response heads), for the messages.
    let isRequest: Bool
    private var what: String { isRequest ? "request" : "response" }
    /// Where to go on looking for the end of the current head: the next byte to look at, where
    /// its line started, and whether no first line has been seen yet (only empty lines).
    private var scanned = 0
    private var lineStart = 0
    private var beforeFirstLine = true

    init(limit: Int, isRequest: Bool) {
        self.limit = limit
        self.isRequest = isRequest
    }

    /// Looks for the end of the head at the start of `bytes` (the same bytes as the previous
    /// call, and perhaps more).
    /// - Returns: the head's length, its empty lines before it and the empty line that ends it
    ///   included, or nil while it is incomplete.
    mutating func scan(_ bytes: UnsafeRawBufferPointer) throws(HTTP1HeadError) -> Int? {
        // Fewer bytes than last time: not the same bytes again (a caller's mistake); start over.
        if scanned > bytes.count { startOver() }
        // The end of the head is the first empty line after the first line. Every line must end
        // with CRLF, so a lone LF, or a CR followed by anything but LF, is an error as soon as it
        // is seen, not once the limit is reached.
        var i = scanned
        while i < bytes.count {
            switch bytes[i] {
            case 0x0A:
                throw HTTP1HeadError(status: 400, message: "a line of the \(what) head ends with LF alone (CRLF is required)")
            case 0x0D:
                guard i + 1 < bytes.count else {
                    scanned = i
                    return nil
                }
                guard bytes[i + 1] == 0x0A else {
                    throw HTTP1HeadError(status: 400, message: "a CR in the \(what) head is not followed by LF")
                }
                if lineStart == i && !beforeFirstLine {
                    let end = i + 2
                    guard end <= limit else { throw tooLarge }
                    startOver()
                    return end
                }
                if lineStart < i { beforeFirstLine = false }
                i += 2
                lineStart = i
            case let c:
                // Bytes no head can have are refused as soon as they are seen, as llhttp does,
                // rather than once the head ends or the limit is reached: a control byte, or a
                // first line that does not start with a token character (a method, or "HTTP").
                if (c < 0x20 && c != 0x09) || c == 0x7F {
                    throw HTTP1HeadError(status: 400, message: "the \(what) head has a control character")
                }
                if beforeFirstLine && i == lineStart && !HTTPBytes.isTokenCharacter(c) {
                    throw HTTP1HeadError(status: 400, message: "the \(what) line does not start with \(isRequest ? "a method" : "HTTP/")")
                }
                // The rest of the line's text (it has nothing to look at but where it ends): up
                // to a CR, an LF or a control byte, which the switch takes.
                i = HTTPBytes.endOfFieldText(bytes, from: i + 1)
            }
            if i > limit { throw tooLarge }
        }
        scanned = i
        return nil
    }

    /// Ready for the next head.
    private mutating func startOver() {
        scanned = 0
        lineStart = 0
        beforeFirstLine = true
    }

    private var tooLarge: HTTP1HeadError {
        HTTP1HeadError(status: 431, message: "the \(what) head is larger than \(limit / 1024) KiB")
    }

    /// Reads the field lines of the complete `head` from `i` (the start of the line after the
    /// first) to its final empty line: each `name ":" OWS value OWS CRLF`, the name one or more
    /// token characters with nothing between it and the colon, the value field text without the
    /// whitespace around it. Bytes past the head read as NUL, which stops every loop and fails
    /// every check.
    ///
    /// `fields` is emptied first and keeps its capacity: a reader that keeps one array and whose
    /// caller lets each head go before the next allocates none per head.
    static func fields(_ head: UnsafeRawBufferPointer, from start: Int, into fields: inout [HTTP1RequestHead.Field]) throws(HTTP1HeadError) {
        func bad(_ message: String) -> HTTP1HeadError { HTTP1HeadError(status: 400, message: message) }
        func b(_ i: Int) -> UInt8 { i < head.count ? head[i] : 0 }
        var i = start
        fields.removeAll(keepingCapacity: true)
        fields.reserveCapacity(12)
        while b(i) != 0x0D {
            let nameStart = i
            while HTTPBytes.isTokenCharacter(b(i)) { i += 1 }
            guard i > nameStart else {
                if b(i) == 0x20 || b(i) == 0x09 { throw bad("a header line starts with whitespace (obs-fold continuation lines are refused)") }
                throw bad("a header name is empty or has a character a name cannot have")
            }
            guard b(i) == UInt8(ascii: ":") else {
                throw bad("a header name is followed by something other than ':' (whitespace before the colon is refused)")
            }
            let name = nameStart..<i
            i += 1
            while b(i) == 0x20 || b(i) == 0x09 { i += 1 }
            let valueStart = i
            i = HTTPBytes.endOfFieldText(head, from: i)
            guard b(i) == 0x0D else { throw bad("a header value has a control character") }
            var valueEnd = i
            while valueEnd > valueStart && (b(valueEnd - 1) == 0x20 || b(valueEnd - 1) == 0x09) { valueEnd -= 1 }
            fields.append(.init(name: name, value: valueStart..<valueEnd))
            i += 2
        }
    }

    static func matches(_ b: UnsafeRawBufferPointer, at i: Int, _ literal: StaticString) -> Bool {
        let n = literal.utf8CodeUnitCount
        guard i + n <= b.count else { return false }
        let l = literal.utf8Start
        for k in 0..<n where b[i + k] != l[k] { return false }
        return true
    }
}
