import NIOCore
import NIOHTTP1
@_spi(HTTPBytes) import RegTokenAccess

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What ``HTTP1ServerCodec`` and ``HTTP1ClientCodec`` share on the wire: keeping an incomplete
/// head, the `String` of a part of a head read, field lines written (and checked), status codes,
/// chunked bodies, and keep-alive.
enum HTTP1Wire {
    /// RFC 3986's characters in a request target: unreserved, gen-delims, sub-delims and `%`
    /// (what NIOHTTP1's request validator allows).
    static func isTargetCharacter(_ c: UInt8) -> Bool {
        switch c {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"),
             UInt8(ascii: ":"), UInt8(ascii: "/"), UInt8(ascii: "?"), UInt8(ascii: "#"), UInt8(ascii: "["), UInt8(ascii: "]"), UInt8(ascii: "@"),
             UInt8(ascii: "!"), UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "("), UInt8(ascii: ")"),
             UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: ","), UInt8(ascii: ";"), UInt8(ascii: "="), UInt8(ascii: "%"):
            true
        default:
            false
        }
    }

    /// `bytes` after the bytes kept of an incomplete head (the head readers want them again).
    static func joined(_ partial: inout ByteBuffer?, _ bytes: ByteBuffer) -> ByteBuffer {
        guard var joined = partial else { return bytes }
        partial = nil
        var bytes = bytes
        joined.writeBuffer(&bytes)
        return joined
    }

    /// The text of `range` of a head, as NIOHTTP1's decoder makes it (bytes that are not UTF-8
    /// become U+FFFD there too; the forwarding rules refuse control bytes, not those).
    static func string(_ range: Range<Int>, _ raw: UnsafeRawBufferPointer) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: raw[range]), as: UTF8.self)
    }

    /// ``string(_:_:)``, or `old` when its bytes are those of `range` (no string made and
    /// checked again for what a connection repeats).
    static func string(_ range: Range<Int>, _ raw: UnsafeRawBufferPointer, reusing old: String?) -> String {
        if let old, equals(old, range, raw) { return old }
        return string(range, raw)
    }

    /// Whether `string`'s UTF-8 is exactly the bytes of `range` (then ``string(_:_:)`` of the
    /// range would be equal to it). In a time that depends on the length only
    /// (`HTTPBytes.sameBytes`): a value compared with the connection's previous head may be a
    /// credential, and with `memcmp` the time would tell a client behind a shared connection (a
    /// load balancer's) how much of its value the previous client's starts with.
    static func equals(_ string: String, _ range: Range<Int>, _ raw: UnsafeRawBufferPointer) -> Bool {
        guard string.utf8.count == range.count else { return false }
        return string.utf8.span.withUnsafeBytes { bytes in HTTPBytes.sameBytes(bytes, UnsafeRawBufferPointer(rebasing: raw[range])) }
    }

    /// The bytes the field lines of `headers` take, the empty line after them included.
    static func size(_ headers: HTTPHeaders) -> Int {
        var size = 2
        for (name, value) in headers { size += name.utf8.count + value.utf8.count + 4 }
        return size
    }

    /// Writes the field lines of `headers` and the empty line after them.
    /// - Returns: false (having written part of them) when a name is not a token or a value is
    ///   not field text (a CR, LF or other control byte would let a peer split the head).
    static func write(_ headers: HTTPHeaders, to out: inout ByteBuffer) -> Bool {
        for (name, value) in headers {
            guard !name.isEmpty, name.utf8.allSatisfy({ HTTPBytes.isTokenCharacter($0) }),
                  value.utf8.allSatisfy({ HTTPBytes.isFieldText($0) }) else { return false }
            out.writeString(name)
            out.writeStaticString(": ")
            out.writeString(value)
            out.writeStaticString("\r\n")
        }
        out.writeStaticString("\r\n")
        return true
    }

    /// Writes a status code of three digits (100 to 999).
    static func writeStatus(_ code: Int, to out: inout ByteBuffer) {
        precondition((100...999).contains(code), "a status code has three digits")
        out.writeInteger(UInt8(0x30 + code / 100))
        out.writeInteger(UInt8(0x30 + code / 10 % 10))
        out.writeInteger(UInt8(0x30 + code % 10))
    }

    /// Writes a body part, as one chunk when `chunked` (an empty part writes nothing then: an
    /// empty chunk would end the body).
    static func writeBody(_ body: ByteBuffer, chunked: Bool, context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        guard chunked && body.readableBytes > 0 else {
            context.write(NIOAny(body), promise: promise)
            return
        }
        var size = context.channel.allocator.buffer(capacity: 18)
        size.writeString(String(body.readableBytes, radix: 16))
        size.writeStaticString("\r\n")
        context.write(NIOAny(size), promise: nil)
        context.write(NIOAny(body), promise: nil)
        context.write(NIOAny(context.channel.allocator.buffer(staticString: "\r\n")), promise: promise)
    }

    /// Writes the end of a body: the last chunk when `chunked` (no trailers: the proxy passes
    /// none on); otherwise nothing, but a promise still completes in order.
    static func writeEnd(chunked: Bool, context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        if chunked {
            context.write(NIOAny(context.channel.allocator.buffer(staticString: "0\r\n\r\n")), promise: promise)
        } else if let promise {
            context.write(NIOAny(context.channel.allocator.buffer(capacity: 0)), promise: promise)
        }
    }
}

extension HTTP1ChunkedBody {
    /// Reads the body's part of `bytes` (moving past it) and returns its data as slices of them,
    /// and the error that stopped it, if any: the data before an error is returned too, so that
    /// what is handed on does not depend on how the bytes arrived. The slices are made before
    /// anything is handed on: a handler may write or close meanwhile, and must not meet these
    /// bytes borrowed.
    mutating func read(_ bytes: inout ByteBuffer) -> (data: [ByteBuffer], error: HTTP1HeadError?) {
        var data: [Range<Int>] = []
        let result = bytes.withUnsafeReadableBytes { raw -> Result<Int, HTTP1HeadError> in
            do throws(HTTP1HeadError) {
                return .success(try read(raw) { data.append($0) })
            } catch {
                return .failure(error)
            }
        }
        let start = bytes.readerIndex
        let slices = data.map { bytes.getSlice(at: start + $0.lowerBound, length: $0.count)! }
        switch result {
        case .success(let used):
            bytes.moveReaderIndex(forwardBy: used)
            return (slices, nil)
        case .failure(let error):
            return (slices, error)
        }
    }
}

extension HTTP1Wire {
    /// Whether a message with these fields keeps the connection open, as NIOHTTP1's
    /// `isKeepAlive` decides it (the `Connection` tokens `close` and `keep-alive`, any letter
    /// case; both, or either twice, mean close; neither: open on HTTP/1.1, closed on 1.0),
    /// without its allocations: headers made through the public API leave NIOHTTP1 to split
    /// every `Connection` value into a new array on each call.
    static func keepsAlive<Fields: Sequence<(name: String, value: String)>>(_ fields: Fields, major: Int, minor: Int) -> Bool {
        var tokens = ConnectionTokens()
        for (name, value) in fields where name.equalsIgnoringASCIICase("connection") { tokens.read(value.utf8) }
        return tokens.keepsAlive(major: major, minor: minor)
    }

    /// The `close` and `keep-alive` tokens of a message's `Connection` values, read one value at
    /// a time as NIOHTTP1's `isKeepAlive` reads them (``keepsAlive(_:major:minor:)``).
    struct ConnectionTokens {
        private var close = false
        private var keepAlive = false
        private var seen = false

        /// Reads one `Connection` value: each comma-separated token, without the whitespace
        /// around it, compared in one pass with the two words (letters in either case).
        mutating func read(_ value: some Sequence<UInt8>) {
            var length = 0
            var spaceAfter = false
            var maybeClose = true
            var maybeKeepAlive = true
            func endToken() {
                let isClose = maybeClose && length == 5
                let isKeepAlive = maybeKeepAlive && length == 10
                if isClose || isKeepAlive {
                    if seen || isClose { close = true } else { keepAlive = true }
                    seen = true
                }
                (length, spaceAfter, maybeClose, maybeKeepAlive) = (0, false, true, true)
            }
            for c in value {
                switch c {
                case UInt8(ascii: ","):
                    endToken()
                case 0x20, 0x09:
                    if length > 0 { spaceAfter = true }
                default:
                    let lower = c >= 0x41 && c <= 0x5A ? c + 0x20 : c
                    if spaceAfter || length >= 5 || lower != HTTP1Wire.closeWord[length] { maybeClose = false }
                    if spaceAfter || length >= 10 || lower != HTTP1Wire.keepAliveWord[length] { maybeKeepAlive = false }
                    length += 1
                }
            }
            endToken()
        }

        /// Whether the message keeps the connection open, given its version.
        func keepsAlive(major: Int, minor: Int) -> Bool {
            if close { return false }
            if keepAlive { return true }
            return major == 1 && minor >= 1
        }
    }

    private static let closeWord = Array("close".utf8)
    private static let keepAliveWord = Array("keep-alive".utf8)
}

extension RequestHead {
    /// ``HTTP1Wire/keepsAlive(_:major:minor:)`` of this head.
    var keepsAlive: Bool { HTTP1Wire.keepsAlive(headers, major: version.major, minor: version.minor) }
}
