import FuzzSupport
import NIOCore
import NIOEmbedded
import NIOHTTP1
@testable import RegTokenAccess
@_spi(Benchmarks) @testable import RegTokenProxyCore

// The byte-level HTTP/1.1 readers of the layer below NIOHTTP1 (HTTP1RequestHeadReader,
// HTTP1ChunkedBody), on raw client bytes. The first input byte says where the bytes are split
// in two reads; the rest is what a client sent: a request head, and a chunked body if the head
// says `Transfer-Encoding: chunked`.
//
// Invariants: no crash; every range lies within the bytes and in order; the same answer read
// whole and split in two; and beside NIOHTTP1's decoder (llhttp): where a head or a chunked body
// ends, llhttp reads the next request; a head read that passes the
// proxy's framing rules is read alike (any method token, and a tab around a Content-Length or
// Transfer-Encoding value, aside: the documented differences), and a chunked body read to its end ends there for llhttp too,
// with the same data.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTP1(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = Fuzz.bytes(data, size)
    guard let first = input.first, input.count > 1 else { return 0 }
    let bytes = Array(input.dropFirst())
    let split = Int(first) % bytes.count

    // The head, whole and split.
    var whole = HTTP1RequestHeadReader(limit: 16384)
    let head = bytes.withUnsafeBytes { b in Result { () throws(HTTP1HeadError) in try whole.read(b) } }
    var parts = HTTP1RequestHeadReader(limit: 16384)
    var again = Array(bytes[..<split]).withUnsafeBytes { b in Result { () throws(HTTP1HeadError) in try parts.read(b) } }
    if case .success(nil) = again { again = bytes.withUnsafeBytes { b in Result { () throws(HTTP1HeadError) in try parts.read(b) } } }
    // The scan goes byte by byte in the same order either way: the same head, or the same error.
    Fuzz.check(again == head, "the bytes read in two parts get another answer than read whole")
    guard case .success(let parsed?) = head else { return 0 }
    func text(_ r: Range<Int>) -> String { String(decoding: bytes[r], as: UTF8.self) }
    Fuzz.check(parsed.length <= bytes.count, "a head longer than the bytes")
    for r in [parsed.method, parsed.target] + parsed.fields.map(\.name) {
        Fuzz.check(!r.isEmpty && r.lowerBound >= 0 && r.upperBound <= parsed.length, "an empty name or a range outside the head")
    }
    for field in parsed.fields {
        Fuzz.check(field.value.lowerBound > field.name.upperBound && field.value.upperBound <= parsed.length, "a value outside its line")
    }
    let request = RequestHead(method: text(parsed.method), target: text(parsed.target), version: (1, parsed.minorVersion),
                              headers: parsed.fields.map { (text($0.name), text($0.value)) })
    guard case .success(let framing) = request.framing() else { return 0 }

    // NIOHTTP1 on the same bytes.
    let channel = EmbeddedChannel(handler: ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))
    defer { _ = try? channel.finish() }
    _ = try? channel.writeInbound(ByteBuffer(bytes: bytes))
    var nioHead: HTTPRequestHead?
    var nioBody: [UInt8] = []
    var nioEnded = false
    while let part = try? channel.readInbound(as: HTTPServerRequestPart.self), !nioEnded {
        switch part {
        case .head(let h): nioHead = h
        case .body(let b): nioBody += b.readableBytesView
        case .end: nioEnded = true
        }
    }
    let llhttpMethod = ["DELETE", "GET", "HEAD", "POST", "PUT", "OPTIONS", "PATCH", "CONNECT", "TRACE"].contains(request.method)
    // A tab on a Content-Length or Transfer-Encoding line: llhttp refuses it (or does not take
    // the coding as chunked); the framing rules take RFC 9110's optional whitespace, and the
    // proxy forwards framing of its own, so the two may differ there.
    let tabbedLength = parsed.fields.contains { field in
        let name = text(field.name).lowercased()
        guard name == "content-length" || name == "transfer-encoding" else { return false }
        let lineEnd = bytes[field.name.lowerBound...].firstIndex(of: 0x0D) ?? bytes.count
        return bytes[field.name.lowerBound..<lineEnd].contains(0x09)
    }
    if llhttpMethod && !tabbedLength {
        Fuzz.check(nioHead != nil, "a head NIOHTTP1 refuses was read: \(request.method) \(request.target)")
        if let nioHead {
            Fuzz.check(nioHead.method.rawValue == request.method && nioHead.uri == request.target && Int(nioHead.version.minor) == parsed.minorVersion,
                       "NIOHTTP1 reads the request line otherwise")
            let trimmed = nioHead.headers.map { (name: $0.name, value: String($0.value.reversed().drop { $0 == " " || $0 == "\t" }.reversed())) }
            Fuzz.check(trimmed.map(\.name) == request.headers.map(\.name) && trimmed.map(\.value) == request.headers.map(\.value),
                       "NIOHTTP1 reads the fields otherwise")
        }
    }

    // Where the head ends: with no body, on a connection that stays open, llhttp reads the next
    // request right after it.
    let next = Array("GET /next HTTP/1.1\r\nHost: r\r\n\r\n".utf8)
    if framing == .none, llhttpMethod, !tabbedLength, parsed.minorVersion == 1, !request.headers.contains(where: { $0.name.lowercased() == "connection" }) {
        Fuzz.check(nioTargets(Array(bytes[..<parsed.length]) + next).last == "/next", "llhttp does not read the next request where the head ends")
    }

    // A chunked body after the head.
    guard framing == .chunked, llhttpMethod, !tabbedLength else { return 0 }
    var body = HTTP1ChunkedBody(limit: 16384)
    var data: [UInt8] = []
    let rest = Array(bytes[parsed.length...])
    let taken = rest.withUnsafeBytes { b in
        Result { () throws(HTTP1HeadError) in
            try body.read(b) { r in
                Fuzz.check(r.lowerBound >= 0 && r.upperBound <= b.count, "a data range outside the bytes")
                data += b[r]
            }
        }
    }
    guard case .success(let n) = taken else { return 0 }
    Fuzz.check(n <= rest.count, "the body took more bytes than there were")
    if body.isComplete {
        Fuzz.check(nioEnded && nioBody == data, "a chunked body ended here and NIOHTTP1 reads it otherwise")
        if !request.headers.contains(where: { $0.name.lowercased() == "connection" }) {
            Fuzz.check(nioTargets(Array(bytes[..<(parsed.length + n)]) + next).last == "/next", "llhttp does not read the next request where the body ends")
        }
    } else {
        Fuzz.check(!nioEnded, "NIOHTTP1 ends a chunked body this reader is still reading")
    }
    return 0
}

/// The targets of the heads NIOHTTP1's decoder reads from `bytes`, in order.
private func nioTargets(_ bytes: [UInt8]) -> [String] {
    let channel = EmbeddedChannel(handler: ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))
    defer { _ = try? channel.finish() }
    _ = try? channel.writeInbound(ByteBuffer(bytes: bytes))
    var targets: [String] = []
    while let part = try? channel.readInbound(as: HTTPServerRequestPart.self) {
        if case .head(let h) = part { targets.append(h.uri) }
    }
    return targets
}
