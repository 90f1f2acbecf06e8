@_spi(HTTPBytes) import RegTokenAccess

/// A chunked request body (RFC 9112 §7.1) read on the bytes, strictly: the second piece of the
/// request path below NIOHTTP1, beside ``HTTP1RequestHeadReader``. Where a body ends is where the
/// next request starts, so this is where a proxy and a registry must never disagree; it is
/// checked against NIOHTTP1's decoder by a differential test. ``HTTP1ServerCodec`` reads chunked
/// request bodies with it.
///
/// What it takes (anything else is an error, 400):
/// - A chunk is `size *( ";" name [ "=" value ] ) CRLF data CRLF`: the size 1 to 16
///   hexadecimal digits, each extension name a token and its value a token or a quoted string,
///   with no whitespace anywhere (RFC 9112 allows some around `;` and `=`; clients send none).
///   Extensions are read past and not kept.
/// - The last chunk has size 0; trailer field lines may follow (`name ":" value`, as in a head;
///   read past and not kept; never `Content-Length` or `Transfer-Encoding`), then an empty line.
/// - Lines end with CRLF; the extensions and trailers together are at most `limit` bytes.
///
/// One value per body: once complete, it reads nothing more (``read(_:data:)`` returns 0), so
/// a body after it needs a new value, never this one again.
@_spi(Benchmarks) public struct HTTP1ChunkedBody: Sendable {
    private enum State: Sendable {
        case size(digits: Int, value: UInt64)
        /// In an extension: its name (how many characters so far), its value as a token, as a
        /// quoted string (just after a backslash or not), or just after a quoted value.
        case extensionName(count: Int)
        case extensionValueStart
        case extensionToken
        case extensionQuoted(escaped: Bool)
        case extensionAfterQuoted
        case sizeLF
        case data(left: UInt64)
        case dataCR
        case dataLF
        case trailerLineStart
        /// In a trailer line: past its colon or not; while in its name, its length and whether it
        /// is so far `Content-Length` or `Transfer-Encoding` (refused in trailers, as llhttp does).
        case trailerLine(sawColon: Bool, nameLength: Int, framing: (length: Bool, encoding: Bool))
        case trailerLF(empty: Bool)
        case done

        /// Extensions and trailer lines: the bytes that count against the limit.
        var isExtensionOrTrailer: Bool {
            switch self {
            case .extensionName, .extensionValueStart, .extensionToken, .extensionQuoted, .extensionAfterQuoted, .trailerLineStart, .trailerLine:
                true
            default:
                false
            }
        }
    }

    private var state = State.size(digits: 0, value: 0)
    /// The size of the chunk whose size line is being read.
    private var sizeValue: UInt64 = 0
    /// Bytes of extensions and trailers read so far.
    private var overhead = 0
    /// The most extension and trailer bytes taken.
    public let limit: Int

    public init(limit: Int) {
        self.limit = limit
    }

    /// Whether the body's last chunk and trailers have been read.
    public var isComplete: Bool {
        if case .done = state { return true }
        return false
    }

    /// Reads `bytes`, the next bytes of the body, calling `data` with each range of them that is
    /// chunk data, in order.
    /// - Returns: how many of `bytes` belong to the body: all of them unless it ended within
    ///   them (the rest is the next request).
    /// - Throws: ``HTTP1HeadError`` (400) when the bytes are not a chunked body: answer and close.
    public mutating func read(_ bytes: UnsafeRawBufferPointer, data: (Range<Int>) -> Void) throws(HTTP1HeadError) -> Int {
        func bad(_ message: String) -> HTTP1HeadError { HTTP1HeadError(status: 400, message: "chunked body: \(message)") }
        var i = 0
        while i < bytes.count {
            switch state {
            case .data(let left):
                let n = Int(min(left, UInt64(bytes.count - i)))
                data(i..<i + n)
                i += n
                state = left == UInt64(n) ? .dataCR : .data(left: left - UInt64(n))
                continue
            case .done:
                return i
            default:
                break
            }
            // Every other state reads one byte.
            let c = bytes[i]
            let isOverhead = state.isExtensionOrTrailer
            i += 1
            switch state {
            case .size(let digits, let value):
                if let v = HTTPBytes.hexValue(c) {
                    guard digits < 16 else { throw bad("a chunk size has more than 16 digits") }
                    state = .size(digits: digits + 1, value: value << 4 | UInt64(v))
                } else if digits == 0 {
                    throw bad("a chunk does not start with its size in hexadecimal")
                } else if c == UInt8(ascii: ";") || c == 0x0D {
                    guard value <= UInt64(Int.max) else { throw bad("a chunk size is too large") }
                    sizeValue = value
                    state = c == 0x0D ? .sizeLF : .extensionName(count: 0)
                } else {
                    throw bad("a chunk size is followed by something other than ';' or CRLF")
                }
            case .extensionName(let count):
                if HTTPBytes.isTokenCharacter(c) {
                    state = .extensionName(count: count + 1)
                } else if count > 0 && c == UInt8(ascii: "=") {
                    state = .extensionValueStart
                } else if count > 0 && c == UInt8(ascii: ";") {
                    state = .extensionName(count: 0)
                } else if count > 0 && c == 0x0D {
                    state = .sizeLF
                } else {
                    throw bad("a chunk extension is not a name, '=' and a value")
                }
            case .extensionValueStart:
                if c == UInt8(ascii: "\"") {
                    state = .extensionQuoted(escaped: false)
                } else if HTTPBytes.isTokenCharacter(c) {
                    state = .extensionToken
                } else {
                    throw bad("a chunk extension's value is neither a token nor a quoted string")
                }
            case .extensionToken:
                if HTTPBytes.isTokenCharacter(c) {
                    // still the value
                } else if c == UInt8(ascii: ";") {
                    state = .extensionName(count: 0)
                } else if c == 0x0D {
                    state = .sizeLF
                } else {
                    throw bad("a chunk extension's value has a character a token cannot have")
                }
            case .extensionQuoted(let escaped):
                guard HTTPBytes.isFieldText(c) else { throw bad("a chunk extension's quoted value has a control character") }
                if escaped {
                    state = .extensionQuoted(escaped: false)
                } else if c == UInt8(ascii: "\"") {
                    state = .extensionAfterQuoted
                } else if c == UInt8(ascii: "\\") {
                    state = .extensionQuoted(escaped: true)
                }
            case .extensionAfterQuoted:
                if c == UInt8(ascii: ";") {
                    state = .extensionName(count: 0)
                } else if c == 0x0D {
                    state = .sizeLF
                } else {
                    throw bad("a chunk extension's quoted value is followed by something other than ';' or CRLF")
                }
            case .sizeLF:
                guard c == 0x0A else { throw bad("a CR after a chunk size is not followed by LF") }
                state = sizeValue == 0 ? .trailerLineStart : .data(left: sizeValue)
            case .dataCR:
                guard c == 0x0D else { throw bad("a chunk's data is longer than its size") }
                state = .dataLF
            case .dataLF:
                guard c == 0x0A else { throw bad("a CR after a chunk's data is not followed by LF") }
                state = .size(digits: 0, value: 0)
            case .trailerLineStart:
                if c == 0x0D {
                    state = .trailerLF(empty: true)
                } else if HTTPBytes.isTokenCharacter(c) {
                    state = .trailerLine(sawColon: false, nameLength: 1, framing: Self.framingName(c, at: 0, (true, true)))
                } else {
                    throw bad("a trailer line does not start with a field name")
                }
            case .trailerLine(let sawColon, let nameLength, let framing):
                if c == 0x0D {
                    guard sawColon else { throw bad("a trailer line has no ':'") }
                    state = .trailerLF(empty: false)
                } else if !sawColon {
                    if c == UInt8(ascii: ":") {
                        if (framing.length && nameLength == Self.contentLength.count) || (framing.encoding && nameLength == Self.transferEncoding.count) {
                            throw bad("a trailer names the message's framing (Content-Length or Transfer-Encoding)")
                        }
                        state = .trailerLine(sawColon: true, nameLength: nameLength, framing: framing)
                    } else if HTTPBytes.isTokenCharacter(c) {
                        state = .trailerLine(sawColon: false, nameLength: nameLength + 1, framing: Self.framingName(c, at: nameLength, framing))
                    } else {
                        throw bad("a trailer field name has a character a name cannot have")
                    }
                } else if !HTTPBytes.isFieldText(c) {
                    throw bad("a trailer value has a control character")
                }
            case .trailerLF(let empty):
                guard c == 0x0A else { throw bad("a CR in the trailers is not followed by LF") }
                if empty {
                    state = .done
                    return i
                }
                state = .trailerLineStart
            case .data, .done:
                preconditionFailure("handled above")
            }
            if isOverhead {
                overhead += 1
                guard overhead <= limit else { throw bad("chunk extensions and trailers are larger than \(limit / 1024) KiB") }
            }
        }
        return i
    }

    private static let contentLength = Array("content-length".utf8)
    private static let transferEncoding = Array("transfer-encoding".utf8)

    /// Whether a trailer name, with `c` at `index`, can still be Content-Length or Transfer-Encoding.
    private static func framingName(_ c: UInt8, at index: Int, _ was: (length: Bool, encoding: Bool)) -> (length: Bool, encoding: Bool) {
        let lower = c >= 0x41 && c <= 0x5A ? c | 0x20 : c
        return (was.length && index < contentLength.count && contentLength[index] == lower,
                was.encoding && index < transferEncoding.count && transferEncoding[index] == lower)
    }
}
