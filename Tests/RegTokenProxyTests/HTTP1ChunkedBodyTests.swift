import RegTokenLoadTest
@_spi(Benchmarks) @testable import RegTokenProxyCore
import Testing

/// The byte-level chunked body reader: its rules as a table, its answer whatever way the bytes
/// arrive, and, on thousands of mutated bodies, never a body end NIOHTTP1's decoder (llhttp) puts
/// elsewhere: where a body ends is where the next request starts.
@Suite("HTTP/1.1 chunked request bodies read on the bytes")
struct HTTP1ChunkedBodyTests {
    enum Outcome: Equatable {
        /// The data, and how many bytes the body took.
        case body([UInt8], length: Int)
        case error
        case incomplete([UInt8])
    }

    static func ours(_ text: String, limit: Int = 16384) -> Outcome { ours(Array(text.utf8), limit: limit) }

    static func ours(_ bytes: [UInt8], limit: Int = 16384) -> Outcome {
        var reader = HTTP1ChunkedBody(limit: limit)
        return feed(&reader, bytes)
    }

    static func feed(_ reader: inout HTTP1ChunkedBody, _ bytes: [UInt8], into data: [UInt8] = []) -> Outcome {
        var data = data
        do {
            let n = try bytes.withUnsafeBytes { b in try reader.read(b) { data += b[$0] } }
            return reader.isComplete ? .body(data, length: n) : .incomplete(data)
        } catch {
            return .error
        }
    }

    static let head = Array("PUT /v2/a/b/blobs/uploads/u1 HTTP/1.1\r\nHost: r\r\nTransfer-Encoding: chunked\r\n\r\n".utf8)
    static let next = Array("GET /next HTTP/1.1\r\nHost: r\r\n\r\n".utf8)

    /// NIOHTTP1's decoder on a chunked request with `body`, then `next`: the body's data and
    /// whether it ended, and whether the next request was read after it (where the body ended).
    static func nio(_ body: [UInt8]) -> (data: [UInt8], ended: Bool, nextRead: Bool) {
        var data: [UInt8] = [], ended = false, nextRead = false
        for part in NIORequestDecoder.parts(head + body + next).parts {
            switch part {
            case .head(let h): if h.uri == "/next" { nextRead = true }
            case .body(let b): if !ended { data += b.readableBytesView }
            case .end: ended = true
            }
        }
        return (data, ended, nextRead)
    }

    @Test("the rules, case by case", arguments: [
        ("3\r\nabc\r\n0\r\n\r\n", Outcome.body(Array("abc".utf8), length: 13)),
        ("3\r\nabc\r\n0\r\n\r\nGET", .body(Array("abc".utf8), length: 13)),
        ("A;name=value;x\r\n0123456789\r\n0\r\n\r\n", .body(Array("0123456789".utf8), length: 33)),
        ("3;a=\"q \\\" ;\"\r\nabc\r\n0\r\n\r\n", .body(Array("abc".utf8), length: 24)),
        ("3;\r\nabc\r\n0\r\n\r\n", .error),
        ("3;a=\r\nabc\r\n0\r\n\r\n", .error),
        ("3; a\r\nabc\r\n0\r\n\r\n", .error),
        ("3;a=\"x\r\nabc\r\n0\r\n\r\n", .error),
        ("1\r\na\r\n1\r\nb\r\n0\r\nX-Sum: 1\r\nY:\r\n\r\n", .body(Array("ab".utf8), length: 31)),
        ("0000000000000003\r\nabc\r\n0\r\n\r\n", .body(Array("abc".utf8), length: 28)),
        ("3\r\nabc\r\n", .incomplete(Array("abc".utf8))),
        ("3\r\nab", .incomplete(Array("ab".utf8))),
        ("0\r\n\r", .incomplete([])),
        ("00000000000000003\r\nabc\r\n0\r\n\r\n", .error),
        ("FFFFFFFFFFFFFFFF\r\n", .error),
        ("3 \r\nabc\r\n0\r\n\r\n", .error),
        (" 3\r\nabc\r\n0\r\n\r\n", .error),
        ("+3\r\nabc\r\n0\r\n\r\n", .error),
        ("0x3\r\nabc\r\n0\r\n\r\n", .error),
        ("\r\n3\r\nabc\r\n0\r\n\r\n", .error),
        ("3\nabc\r\n0\r\n\r\n", .error),
        ("3\r\nabcd\r\n0\r\n\r\n", .error),
        ("3\r\nabc\n0\r\n\r\n", .error),
        ("3;a=\"\u{0}\"\r\nabc\r\n0\r\n\r\n", .error),
        ("3;a\rb\r\nabc\r\n0\r\n\r\n", .error),
        ("3;a=b\r\nabc\r\n0;last=1\r\n\r\n", .body(Array("abc".utf8), length: 24)),
        ("0\r\nX Y: 1\r\n\r\n", .error),
        ("0\r\nNoColon\r\n\r\n", .error),
        ("0\r\n folded\r\n\r\n", .error),
        ("0\r\nX: a\u{7F}\r\n\r\n", .error),
        ("0\r\nContent-Length: 5\r\n\r\n", .error),
        ("0\r\ntransfer-ENCODING: chunked\r\n\r\n", .error),
        ("0\r\nContent-Lengths: 5\r\n\r\n", .body([], length: 25)),
        ("0\r\nContent-Lengt: 5\r\n\r\n", .body([], length: 23)),
        ("0\r\nTransfer-Encoding2: x\r\n\r\n", .body([], length: 28)),
        ("0\r\n\r\r\n", .error),
    ])
    func rules(_ input: String, _ expected: Outcome) {
        #expect(Self.ours(input) == expected)
    }

    @Test("extensions and trailers past the limit are refused")
    func limit() {
        #expect(Self.ours("3;\(String(repeating: "x", count: 100))\r\nabc\r\n0\r\n\r\n", limit: 64) == .error)
        #expect(Self.ours("0\r\nX: \(String(repeating: "y", count: 100))\r\n\r\n", limit: 64) == .error)
        #expect(Self.ours("3;\(String(repeating: "x", count: 50))\r\nabc\r\n0\r\n\r\n", limit: 64) != .error)
    }

    @Test("the same answer whatever the bytes' arrival: whole, or a byte at a time")
    func arrival() {
        for text in ["3;x=y\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nT: v\r\n\r\nGET", "3\r\nabc\r\n", "3\r\nab\nc\r\n0\r\n\r\n", "5\r\nabc\r\n0\r\n\r\n"] {
            let bytes = Array(text.utf8)
            let whole = Self.ours(bytes)
            var reader = HTTP1ChunkedBody(limit: 16384)
            var data: [UInt8] = [], last = Outcome.incomplete([]), taken = 0
            for (k, byte) in bytes.enumerated() {
                last = Self.feed(&reader, [byte], into: data)
                switch last {
                case .incomplete(let d): data = d
                case .body(let d, let n): last = .body(d, length: k + n); taken = 1
                case .error: taken = 1
                }
                if taken == 1 { break }
            }
            #expect(last == whole, "\(text.debugDescription)")
        }
    }

    @Test("on 50,000 mutated bodies, where this reader ends a body NIOHTTP1's decoder ends it too, with the same data, and reads the next request after it")
    func agreesWithNIO() {
        let seeds = ["3\r\nabc\r\n0\r\n\r\n", "A;ext=1\r\n0123456789\r\n2\r\nxy\r\n0\r\nX-Trailer: t\r\n\r\n", "1\r\n\r\r\n0\r\n\r\n",
                     "0\r\nContent-Lengths: 1\r\nTransfer-Encodinf: x\r\n\r\n", "2;q=\"a\\\"b;c\";t=v\r\nxy\r\n0\r\n\r\n"]
        let interesting: [UInt8] = [0x0D, 0x0A, 0x20, 0x09, 0x3B, 0x3D, 0x3A, 0x00, 0x7F, 0x80, 0x30, 0x31, 0x41, 0x61, 0x67, 0x2D, 0x22, 0x5C]
        var random = SplitMix(seed: 31)
        var ended = 0, other = 0, disagreements: [String] = []
        for seed in seeds {
            let original = Array(seed.utf8)
            guard case .body = Self.ours(original) else { Issue.record("seed \(seed.debugDescription) not read"); continue }
            for _ in 0..<10_000 {
                var bytes = original
                for _ in 0...random.below(2) {
                    let at = random.below(bytes.count)
                    let byte = interesting[random.below(interesting.count)]
                    switch random.below(3) {
                    case 0: bytes[at] = byte
                    case 1: bytes.insert(byte, at: at)
                    default: if bytes.count > 1 { bytes.remove(at: at) }
                    }
                }
                let ours = Self.ours(bytes + Self.next)
                let theirs = Self.nio(bytes)
                func note(_ what: String) { disagreements.append("\(String(decoding: bytes, as: UTF8.self).debugDescription): \(what); ours \(ours), NIOHTTP1 \(theirs)") }
                switch ours {
                case .body(let data, let length):
                    ended += 1
                    if !theirs.ended || theirs.data != data { note("NIOHTTP1 reads the body otherwise") }
                    // Where the body ends: llhttp reads the next request right after it.
                    else if length <= bytes.count && !Self.nio(Array(bytes[..<length])).nextRead { note("NIOHTTP1 does not read the next request where the body ends") }
                case .incomplete:
                    other += 1
                    if theirs.ended { note("NIOHTTP1 ends a body ours is still reading") }
                case .error:
                    other += 1
                }
            }
        }
        #expect(disagreements.isEmpty, "\(disagreements.count) disagreements, first: \(disagreements.prefix(3))")
        #expect(ended > 3_000 && other > 3_000, "ended \(ended), other \(other)")
    }
}
