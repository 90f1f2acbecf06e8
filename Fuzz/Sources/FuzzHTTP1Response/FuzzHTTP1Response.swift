import FuzzSupport
import NIOCore
import NIOEmbedded
import NIOHTTP1
@_spi(Benchmarks) @testable import RegTokenProxyCore

// The registry side's HTTP/1.1 codec (HTTP1ClientCodec: HTTP1ResponseHeadReader and
// HTTP1ChunkedBody) on raw bytes from the registry. The first two input bytes say whether the
// first of the two requests they answer was a HEAD (the first byte's high bit) and where the
// bytes are split in two reads (the other 15 bits); the rest is what the registry sent.
//
// Invariants: no crash; the same parts read whole and split in two; and beside NIOHTTP1's client
// pipeline (llhttp) on the same bytes: every part the codec hands on, NIOHTTP1 hands on alike, in
// the same order (so where a response ends, llhttp ends it too), the codec's head carrying the
// fields the forwarding rules keep of NIOHTTP1's (hop-by-hop fields, those Connection names,
// Transfer-Encoding, and Content-Length on a 204 or 304 dropped; read plainly here). The codec
// may refuse more than llhttp, never read otherwise. Aside, the documented differences:
// whitespace at the end of a value is not part of it (RFC 9110 §5.5; llhttp keeps it in
// responses), and a tab around a Content-Length value is taken (llhttp refuses it).

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTP1Response(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = Fuzz.bytes(data, size)
    guard input.count > 2 else { return 0 }
    let bytes = Array(input.dropFirst(2))
    let split = (Int(input[0] & 0x7F) << 8 | Int(input[1])) % bytes.count
    let methods: [HTTPMethod] = [input[0] & 0x80 != 0 ? .HEAD : .GET, .GET]

    let whole = ours([bytes], methods: methods)
    let twice = ours([Array(bytes[..<split]), Array(bytes[split...])], methods: methods)
    Fuzz.check(whole == twice, "the bytes read in two parts get other parts than read whole")
    guard !whole.isEmpty else { return 0 }

    var theirs = nio(bytes, methods: methods)
    if Array(theirs.prefix(whole.count)) != whole {
        let spaced = contentLengthTabsAsSpaces(bytes)
        if spaced != bytes { theirs = nio(spaced, methods: methods) }
    }
    Fuzz.check(Array(theirs.prefix(whole.count)) == whole, "the codec hands on parts NIOHTTP1 reads otherwise: ours \(whole), NIOHTTP1 \(theirs)")
    return 0
}

/// A part as compared: heads by status, version and fields (values without trailing
/// whitespace), each body part's bytes joined up to the end.
private enum Part: Equatable {
    case head(UInt, Int, [String])
    case body([UInt8])
    case end
}

private func trimmed<S: StringProtocol>(_ v: S) -> String {
    var v = Substring(v)
    while v.first == " " || v.first == "\t" { v = v.dropFirst() }
    while v.last == " " || v.last == "\t" { v = v.dropLast() }
    return String(v)
}

private func joined(_ out: inout [Part], _ bytes: [UInt8]) {
    if case .body(let before)? = out.last { out[out.count - 1] = .body(before + bytes) } else { out.append(.body(bytes)) }
}

/// NIOHTTP1's parts, each head's fields through a plain reading of the forwarding rules.
private func normalized(_ parts: [HTTPClientResponsePart]) -> [Part] {
    let hop: Set = ["connection", "keep-alive", "proxy-connection", "proxy-authorization", "proxy-authenticate", "te", "trailer",
                    "upgrade", "transfer-encoding"]
    var out: [Part] = []
    for part in parts {
        switch part {
        case .head(let h):
            let named = Set(h.headers.filter { $0.name.lowercased() == "connection" }
                .flatMap { $0.value.split(separator: ",", omittingEmptySubsequences: false).map { trimmed($0).lowercased() } })
            let bodiless = h.status.code == 204 || h.status.code == 304
            let kept = h.headers.filter { name, _ in
                let lower = name.lowercased()
                return !hop.contains(lower) && !named.contains(lower) && !(bodiless && lower == "content-length")
            }
            out.append(.head(h.status.code, h.version.minor, kept.map { "\($0.name): \(trimmed($0.value))" }))
        case .body(let b):
            joined(&out, Array(b.readableBytesView))
        case .end:
            out.append(.end)
        }
    }
    return out
}

/// The codec's parts, each head's forwarded field lines split.
private func normalized(_ parts: [RegistryResponsePart]) -> [Part] {
    var out: [Part] = []
    for part in parts {
        switch part {
        case .head(let h):
            let lines = String(buffer: h.fields).split(separator: "\r\n", omittingEmptySubsequences: false).dropLast().map { String($0) }
            out.append(.head(UInt(h.status), h.minorVersion, lines))
        case .body(let b):
            joined(&out, Array(b.readableBytesView))
        case .end:
            out.append(.end)
        }
    }
    return out
}

private func writeRequests(_ channel: EmbeddedChannel, _ methods: [HTTPMethod], nio: Bool) {
    for method in methods {
        let head = HTTPRequestHead(version: .http1_1, method: method, uri: "/v2/", headers: ["Host": "r"])
        if nio {
            _ = try? channel.writeOutbound(HTTPClientRequestPart.head(head))
            _ = try? channel.writeOutbound(HTTPClientRequestPart.end(nil))
        } else {
            _ = try? channel.writeOutbound(RegistryRequestPart.head(head))
            _ = try? channel.writeOutbound(RegistryRequestPart.end)
        }
    }
}

/// What the codec hands on for `reads`, up to an error (the parts before it stay).
private func ours(_ reads: [[UInt8]], methods: [HTTPMethod]) -> [Part] {
    let channel = EmbeddedChannel(handler: HTTP1ClientCodec())
    defer { _ = try? channel.finish() }
    _ = try? channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    writeRequests(channel, methods, nio: false)
    for read in reads where !read.isEmpty {
        if (try? channel.writeInbound(ByteBuffer(bytes: read))) == nil { break }
    }
    var parts: [RegistryResponsePart] = []
    while let part = try? channel.readInbound(as: RegistryResponsePart.self) { parts.append(part) }
    return normalized(parts)
}

/// The same bytes through NIOHTTP1's client handlers.
private func nio(_ bytes: [UInt8], methods: [HTTPMethod]) -> [Part] {
    let channel = EmbeddedChannel()
    defer { _ = try? channel.finish() }
    Fuzz.must { try channel.pipeline.syncOperations.addHTTPClientHandlers() }
    _ = try? channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    writeRequests(channel, methods, nio: true)
    _ = try? channel.writeInbound(ByteBuffer(bytes: bytes))
    var parts: [HTTPClientResponsePart] = []
    while let part = try? channel.readInbound(as: HTTPClientResponsePart.self) { parts.append(part) }
    return normalized(parts)
}

/// `bytes` with the tabs of its Content-Length lines made spaces.
private func contentLengthTabsAsSpaces(_ bytes: [UInt8]) -> [UInt8] {
    var out = bytes
    var lineStart = 0
    for i in bytes.indices where bytes[i] == 0x0A || i == bytes.count - 1 {
        if String(decoding: bytes[lineStart...i], as: UTF8.self).lowercased().hasPrefix("content-length:") {
            for k in lineStart...i where out[k] == 0x09 { out[k] = 0x20 }
        }
        lineStart = i + 1
    }
    return out
}
