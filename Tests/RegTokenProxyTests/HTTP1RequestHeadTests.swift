import RegTokenLoadTest
@_spi(HTTPBytes) @testable import RegTokenAccess
@_spi(Benchmarks) @testable import RegTokenProxyCore
import Testing

/// The byte-level request head reader: its rules as a table, its answer whatever way the bytes
/// arrive, and, on thousands of mutated requests, never a head NIOHTTP1's decoder (llhttp) would
/// read differently or not at all.
@Suite("HTTP/1.1 request heads read on the bytes")
struct HTTP1RequestHeadTests {
    enum Outcome: Equatable {
        case head(method: String, target: String, minor: Int, fields: [String], length: Int)
        case error(Int)
        case incomplete
    }

    static func ours(_ text: String, limit: Int = 16384) -> Outcome { ours(Array(text.utf8), limit: limit) }

    static func ours(_ bytes: [UInt8], limit: Int = 16384) -> Outcome {
        var reader = HTTP1RequestHeadReader(limit: limit)
        return outcome(bytes) { try reader.read($0) }
    }

    static func outcome(_ bytes: [UInt8], _ read: (UnsafeRawBufferPointer) throws -> HTTP1RequestHead?) -> Outcome {
        bytes.withUnsafeBytes { b in
            do {
                guard let h = try read(b) else { return .incomplete }
                func text(_ r: Range<Int>) -> String { String(decoding: b[r], as: UTF8.self) }
                return .head(method: text(h.method), target: text(h.target), minor: h.minorVersion,
                             fields: h.fields.map { "\(text($0.name)): \(text($0.value))" }, length: h.length)
            } catch let error as HTTP1HeadError {
                return .error(error.status)
            } catch {
                return .error(-1)
            }
        }
    }

    static let next = Array("GET /next HTTP/1.1\r\nHost: r\r\n\r\n".utf8)

    /// NIOHTTP1's decoder on the same bytes: its first head, an error, or nothing yet.
    static func nio(_ bytes: [UInt8]) -> Outcome {
        let (parts, refused) = NIORequestDecoder.parts(bytes)
        guard case .head(let h)? = parts.first else { return refused ? .error(400) : .incomplete }
        // llhttp keeps whitespace after a value; RFC 9112 §5 says it is not part of it.
        func trimmed(_ v: String) -> String {
            var u = Array(v.utf8)
            while let last = u.last, last == 0x20 || last == 0x09 { u.removeLast() }
            return String(decoding: u, as: UTF8.self)
        }
        return .head(method: h.method.rawValue, target: h.uri, minor: Int(h.version.minor),
                     fields: h.headers.map { "\($0.name): \(trimmed($0.value))" }, length: -1)
    }

    /// The constant-time comparison against `==` on arrays: equal bytes at every length up to
    /// and past a vector's width, one differing bit at every place, at every offset into the
    /// buffers, and different lengths.
    @Test("byte comparison in constant time: the same answer as ==, wherever the difference is")
    func sameBytes() {
        var rng = SplitMix(seed: 0x5A4E)
        for offset in 0..<8 {
            for length in Array(0...41) + [63, 64, 65, 127, 128, 129, 255, 256, 400] {
                let a = (0..<length).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                let padding = (0..<offset).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                func same(_ x: [UInt8], _ y: [UInt8]) -> Bool {
                    (padding + x).withUnsafeBytes { px in
                        y.withUnsafeBytes { py in HTTPBytes.sameBytes(UnsafeRawBufferPointer(rebasing: px[offset...]), py) }
                    }
                }
                #expect(same(a, a), "length \(length), offset \(offset)")
                #expect(!same(a, a + [0]) && !same(a + [0], a), "length \(length), offset \(offset)")
                for position in 0..<length {
                    for bit in 0..<8 {
                        var b = a
                        b[position] ^= 1 << bit
                        if same(a, b) || same(b, a) {
                            Issue.record("length \(length), offset \(offset): a difference in bit \(bit) of byte \(position) not seen")
                            return
                        }
                    }
                }
            }
        }
    }

    /// The word-at-a-time scan for the end of field text against the byte-by-byte rule
    /// (`HTTPBytes.isFieldText`): every byte value at every place of a word and of the tail, at
    /// every alignment, among random field text (bytes from 0x80, tabs and spaces included: a
    /// borrow between bytes must neither hide nor invent an end).
    @Test("field text ends where the byte-by-byte rule says, wherever the byte that ends it falls")
    func endOfText() {
        var rng = SplitMix(seed: 0x7E47)
        let text: [UInt8] = [0x09, 0x20, 0x21, 0x41, 0x7E, 0x80, 0x81, 0xC3, 0xFE, 0xFF]
        for start in 0..<8 {
            for length in 1...26 {
                for position in 0..<length {
                    for value in 0...255 {
                        var bytes = (0..<(start + length)).map { _ in text[Int(rng.next() % UInt64(text.count))] }
                        bytes[start + position] = UInt8(value)
                        let expected = (start..<bytes.count).first { !HTTPBytes.isFieldText(bytes[$0]) } ?? bytes.count
                        let found = bytes.withUnsafeBytes { HTTPBytes.endOfFieldText($0, from: start) }
                        if found != expected {
                            Issue.record("start \(start), bytes \(bytes): \(found), expected \(expected)")
                            return
                        }
                    }
                }
            }
        }
    }

    @Test("the rules, case by case", arguments: [
        ("GET /v2/ HTTP/1.1\r\nHost: r\r\n\r\n", Outcome.head(method: "GET", target: "/v2/", minor: 1, fields: ["Host: r"], length: 30)),
        ("GET /v2/ HTTP/1.0\r\n\r\nrest", .head(method: "GET", target: "/v2/", minor: 0, fields: [], length: 21)),
        ("\r\n\r\nGET / HTTP/1.1\r\nA:\r\nB: \t x y \t\r\n\r\n", .head(method: "GET", target: "/", minor: 1, fields: ["A: ", "B: x y"], length: 38)),
        ("PATCH /v2/a/b?x=1&y=%20 HTTP/1.1\r\nX-\u{e9}t\u{e9}: caf\u{e9}\r\n\r\n", .error(400)),
        ("PATCH /v2/a/b?x=1&y=%20 HTTP/1.1\r\nX-A: caf\u{e9}\r\n\r\n", .head(method: "PATCH", target: "/v2/a/b?x=1&y=%20", minor: 1, fields: ["X-A: caf\u{e9}"], length: 48)),
        ("GET / HTTP/1.1\r\nHost: r\r\n", .incomplete),
        ("GET / HTTP/1.1\r\nHost: r\r\n\r", .incomplete),
        ("\r\n", .incomplete),
        ("GET / HTTP/1.1\nHost: r\n\n", .error(400)),
        ("GET / HTTP/1.1\r\nHost: r\rX: y\r\n\r\n", .error(400)),
        ("GET / HTTP/1.1\r\nHost: a\u{0}b\r\n\r\n", .error(400)),
        ("GET / HTTP/1.1\r\nHost: a\u{7F}b\r\n\r\n", .error(400)),
        ("GET / HTTP/1.1\r\nHost : r\r\n\r\n", .error(400)),
        ("GET / HTTP/1.1\r\nHost: r\r\n folded\r\n\r\n", .error(400)),
        ("GET / HTTP/1.1\r\n: r\r\n\r\n", .error(400)),
        ("GET / HTTP/1.1\r\nX(y): r\r\n\r\n", .error(400)),
        ("GET  / HTTP/1.1\r\n\r\n", .error(400)),
        ("GET / x HTTP/1.1\r\n\r\n", .error(400)),
        ("GET /\u{e9} HTTP/1.1\r\n\r\n", .error(400)),
        ("GET / HTTP/1.1 \r\n\r\n", .error(400)),
        ("GET / http/1.1\r\n\r\n", .error(400)),
        ("GET / HTTP/2.0\r\n\r\n", .error(505)),
        ("GET / HTTP/1.2\r\n\r\n", .error(505)),
        ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", .error(400)),
        (" GET / HTTP/1.1\r\n\r\n", .error(400)),
        ("G\u{E9}T / HTTP/1.1\r\n\r\n", .error(400)),
        ("GET v2/ HTTP/1.1\r\n\r\n", .error(400)),
        ("GET http://r/v2/ HTTP/1.1\r\n\r\n", .error(400)),
        ("OPTIONS * HTTP/1.1\r\n\r\n", .error(400)),
        // Only what RFC 3986 allows unescaped in a target (the proxy writes nothing else upstream).
        ("GET /v2/a/b/manifests/x?z={ HTTP/1.1\r\nHost: r\r\n\r\n", .error(400)),
        ("GET /v2/a\"b HTTP/1.1\r\nHost: r\r\n\r\n", .error(400)),
        ("GET /v2/a|b^c HTTP/1.1\r\nHost: r\r\n\r\n", .error(400)),
    ])
    func rules(_ input: String, _ expected: Outcome) {
        #expect(Self.ours(input) == expected)
    }

    @Test("bytes no head can have are refused at once, before the head ends: a control byte, a request line not starting with a method")
    func refusedEarly() {
        #expect(Self.ours([0x00, 0x01, 0x02, 0xFF]) == .error(400))
        #expect(Self.ours([0xFF, 0x47, 0x45, 0x54]) == .error(400))
        #expect(Self.ours(Array("\r\n /v2/".utf8)) == .error(400))
        #expect(Self.ours(Array("GET /v2/ HTTP/1.1\r\nX: a\u{7F}".utf8)) == .error(400))
        #expect(Self.ours(Array("GET /v2/ HTTP/1.1\r\nX: a\u{1B}".utf8)) == .error(400))
        // What can still become a head waits for more.
        #expect(Self.ours(Array("\r\nGET /v2/ HTTP/1.1\r\nX: a\tb \u{80}".utf8)) == .incomplete)
        #expect(Self.ours(Array("G".utf8)) == .incomplete)
    }

    @Test("a head over the limit is 431 as soon as the limit is passed, with or without its end")
    func limit() {
        let head = "GET / HTTP/1.1\r\nX: \(String(repeating: "a", count: 100))\r\n\r\n"
        #expect(Self.ours(head, limit: head.utf8.count) != .error(431))
        #expect(Self.ours(head, limit: head.utf8.count - 1) == .error(431))
        #expect(Self.ours(String(head.dropLast(4)), limit: 64) == .error(431))
        #expect(Self.ours(String(repeating: "\r\n", count: 40), limit: 64) == .error(431))
    }

    @Test("the same answer whatever the bytes' arrival: whole, or growing a byte at a time on one reader")
    func arrival() {
        for text in ["\r\nGET /v2/acme/app/manifests/v1 HTTP/1.1\r\nHost: r\r\nAuthorization: Basic dG9rZW46eA==\r\n\r\nBODY",
                     "GET / HTTP/1.1\r\nHost: r\r\n\r\n", "GET / HTTP/1.1\r\nHost: r\nX: y\r\n\r\n", "GET / HTTP/1.1\r\nA: b\rc\r\n\r\n"] {
            let bytes = Array(text.utf8)
            let whole = Self.ours(bytes)
            var reader = HTTP1RequestHeadReader(limit: 16384)
            var last = Outcome.incomplete
            for n in 1...bytes.count {
                last = Self.outcome(Array(bytes[..<n])) { try reader.read($0) }
                if last != .incomplete { break }
            }
            #expect(last == whole, "\(text.debugDescription)")
        }
        // After a head, the reader starts afresh on the next one.
        var reader = HTTP1RequestHeadReader(limit: 16384)
        let first = Array("GET /a HTTP/1.1\r\nHost: r\r\n\r\n".utf8)
        guard case .head = Self.outcome(first, { try reader.read($0) }) else { Issue.record("no first head"); return }
        #expect(Self.outcome(Array("GET /b HTTP/1.0\r\n\r\n".utf8), { try reader.read($0) })
                == .head(method: "GET", target: "/b", minor: 0, fields: [], length: 19))
    }

    /// `bytes` with the tabs of its Content-Length lines made spaces.
    static func contentLengthTabsAsSpaces(_ bytes: [UInt8]) -> [UInt8] {
        var out = bytes
        var lineStart = 0
        for i in bytes.indices where bytes[i] == 0x0A || i == bytes.count - 1 {
            let line = bytes[lineStart...i]
            if String(decoding: line, as: UTF8.self).lowercased().hasPrefix("content-length:") {
                for k in lineStart...i where out[k] == 0x09 { out[k] = 0x20 }
            }
            lineStart = i + 1
        }
        return out
    }

    /// The methods llhttp reads (its `HTTP_METHOD_MAP`, the HTTP ones).
    static let llhttpMethods: Set<String> = [
        "DELETE", "GET", "HEAD", "POST", "PUT", "CONNECT", "OPTIONS", "TRACE", "COPY", "LOCK", "MKCOL", "MOVE", "PROPFIND", "PROPPATCH",
        "SEARCH", "UNLOCK", "BIND", "REBIND", "UNBIND", "ACL", "REPORT", "MKACTIVITY", "CHECKOUT", "MERGE", "M-SEARCH", "NOTIFY",
        "SUBSCRIBE", "UNSUBSCRIBE", "PATCH", "PURGE", "MKCALENDAR", "LINK", "UNLINK", "SOURCE", "QUERY",
    ]

    @Test("a caller that passes other bytes than before gets an answer about them, never a read past them")
    func otherBytes() {
        var reader = HTTP1RequestHeadReader(limit: 16384)
        #expect(Self.outcome(Array("GET / HTTP/1.1\r\nHost: \r\n".utf8), { try reader.read($0) }) == .incomplete)
        // Longer, but not starting with the same bytes: whatever the answer, it comes from these bytes.
        let other = Array(repeating: UInt8(0x0D), count: 24) + [0x0D, 0x0A]
        #expect(Self.outcome(other, { try reader.read($0) }) == .error(400))
        // Shorter: the reader starts over on them.
        var again = HTTP1RequestHeadReader(limit: 16384)
        _ = Self.outcome(Array("GET / HTTP/1.1\r\nHost: r\r\nX: y".utf8), { try again.read($0) })
        #expect(Self.outcome(Array("GET /b HTTP/1.0\r\n\r\n".utf8), { try again.read($0) }) == .head(method: "GET", target: "/b", minor: 0, fields: [], length: 19))
    }

    @Test("on 40,000 mutated requests, every head read and passing the framing rules is one NIOHTTP1's decoder reads alike")
    func agreesWithNIO() {
        let seeds = [
            "GET /v2/acme/app/manifests/v1 HTTP/1.1\r\nHost: registry.example:5000\r\nAuthorization: Basic dG9rZW46ZXlKaGJHY2lPaUpJVXpJMU5pSjk=\r\nUser-Agent: docker/27.0 go/go1.22 (linux)\r\nAccept: application/vnd.oci.image.manifest.v1+json, */*\r\n\r\n",
            "PATCH /v2/acme/app/blobs/uploads/u1?_state=abc HTTP/1.1\r\nHost: r\r\nContent-Type: application/octet-stream\r\nContent-Length: 3\r\n\r\nabc",
            "HEAD /v2/ HTTP/1.0\r\nX-Empty:\r\nX-Spaced:  a  b  \r\n\r\n",
            "\r\nPUT /v2/a/b/manifests/v1 HTTP/1.1\r\nHost: r\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        ]
        let interesting: [UInt8] = [0x0D, 0x0A, 0x20, 0x09, 0x3A, 0x00, 0x7F, 0x80, 0xC3, 0xA9, 0x61, 0x2F, 0x3F, 0x25, 0x28, 0x2C, 0x3B, 0x48, 0x31]
        var random = SplitMix(seed: 20261203)
        var read = 0, refusedByUs = 0, disagreements: [String] = []
        for seed in seeds {
            let original = Array(seed.utf8)
            #expect(Self.ours(original) != .incomplete && Self.nio(original) != .incomplete)
            for _ in 0..<10_000 {
                var bytes = original
                for _ in 0...random.below(3) {
                    let at = random.below(bytes.count)
                    let byte = random.below(4) == 0 ? UInt8(truncatingIfNeeded: random.next()) : interesting[random.below(interesting.count)]
                    switch random.below(3) {
                    case 0: bytes[at] = byte
                    case 1: bytes.insert(byte, at: at)
                    default: if bytes.count > 1 { bytes.remove(at: at) }
                    }
                }
                var ours = Self.ours(bytes)
                // What the proxy would forward: a head its framing rules accept too (they refuse
                // a bad Content-Length, Transfer-Encoding, Host; NIOHTTP1 refuses some of those
                // while reading).
                if case .head(let method, let target, let minor, let fields, _) = ours {
                    let head = RequestHead(method: method, target: target, version: (1, minor), headers: fields.map {
                        let colon = $0.firstIndex(of: ":")!
                        return (String($0[..<colon]), String($0[$0.index(colon, offsetBy: 2)...]))
                    })
                    if case .failure = head.framing() { ours = .error(400) }
                }
                switch ours {
                case .head(let method, let target, let minor, let fields, _):
                    read += 1
                    var theirs = Self.nio(bytes)
                    // llhttp reads only the methods it knows; any token is a method here (the
                    // decision answers 405 to those the registry API does not have): with GET
                    // in its place, the rest must read alike.
                    if case .error = theirs, !Self.llhttpMethods.contains(method) {
                        let start = bytes.firstIndex { $0 != 0x0D && $0 != 0x0A } ?? 0
                        var asGET = bytes
                        asGET.replaceSubrange(start..<start + method.utf8.count, with: Array("GET".utf8))
                        if case .head(_, let t, let v, let f, let n) = Self.nio(asGET) { theirs = .head(method: method, target: t, minor: v, fields: f, length: n) }
                    }
                    // llhttp refuses a tab around a Content-Length value; the framing rules take
                    // RFC 9110's optional whitespace (a space or a tab), and the proxy forwards a
                    // Content-Length of its own: with spaces for those tabs, the rest must read alike.
                    if case .error = theirs, fields.contains(where: { $0.lowercased().hasPrefix("content-length: ") }) {
                        let spaced = Self.contentLengthTabsAsSpaces(bytes)
                        if spaced != bytes, case .head = Self.nio(spaced) { theirs = Self.nio(spaced) }
                    }
                    guard case .head(let m, let t, let v, let f, _) = theirs, m == method, t == target, v == minor, f == fields else {
                        disagreements.append("\(String(decoding: bytes, as: UTF8.self).debugDescription): ours \(ours), NIOHTTP1 \(theirs)")
                        continue
                    }
                    // Where the head ends: with no body, llhttp reads the next request right after
                    // it (on a connection that stays open: HTTP/1.1 without Connection: close).
                    if case .head(_, _, _, _, let length) = ours, Self.llhttpMethods.contains(method), minor == 1,
                       !fields.contains(where: { $0.lowercased().hasPrefix("connection:") }),
                       case .success(.none) = RequestHead(method: method, target: target, version: (1, minor), headers: fields.map {
                           let colon = $0.firstIndex(of: ":")!
                           return (String($0[..<colon]), String($0[$0.index(colon, offsetBy: 2)...]))
                       }).framing(),
                       !NIORequestDecoder.targets(Array(bytes[..<length]) + Self.next).contains("/next") {
                        disagreements.append("\(String(decoding: bytes, as: UTF8.self).debugDescription): llhttp does not read the next request where this head ends")
                    }
                case .error, .incomplete:
                    refusedByUs += 1
                    // Where NIOHTTP1 reads a head that we would wait for, the two disagree on where the head ends.
                    if ours == .incomplete, case .head = Self.nio(bytes) {
                        disagreements.append("\(String(decoding: bytes, as: UTF8.self).debugDescription): ours incomplete, NIOHTTP1 read a head")
                    }
                }
            }
        }
        #expect(disagreements.isEmpty, "\(disagreements.count) disagreements, first: \(disagreements.prefix(3).map { $0.prefix(160) + " … " + $0.suffix(200) })")
        // Both kinds are exercised in number.
        #expect(read > 5_000 && refusedByUs > 5_000, "read \(read), refused or incomplete \(refusedByUs)")
    }
}
