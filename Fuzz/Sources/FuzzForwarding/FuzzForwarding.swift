import FuzzSupport
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import RegToken
import RegTokenAccess
@testable import RegTokenProxyCore

// The proxy's whole request path: raw client bytes go through the same pipeline as a real
// connection (HTTP/1.1 server codec with pipelining assistance and error handling, then
// ProxyHandler) and what the proxy would send the registry is captured from an upstream
// EmbeddedChannel (the HTTP/1.1 client codec), then read back by a strict parser with Go's
// net/http framing rules, as the registry would read it. Each complete upstream request is
// answered with an empty 200, so pipelined requests go on.
//
// In the input, "@RW@" and "@RO@" stand for a valid non-expiring read-write or pull-only
// token of account acme (Basic credentials), so that mutations reach the forwarding path.
//
// Invariants: the upstream bytes parse as a sequence of requests, each framed exactly as the
// proxy's rules say (at most one Content-Length or a lowercase `chunked`, never both, none on
// GET/HEAD/DELETE), with no credentials, no control bytes or folded lines in headers, and the
// proxy's own X-Forwarded-For/-Proto exactly once; nothing follows them but a request whose body
// the client had not finished sending; and there are exactly as many of them as the proxy
// logged allowed requests (a smuggled request would be one more than were allowed).

private let rw = credentials(.pushPull)
private let ro = credentials(.pull)

private func credentials(_ scope: Scope) -> [UInt8] {
    let token = Fuzz.must {
        try TokenIssuer(keyRing: Fuzz.ring).issue(TokenClaims(account: "acme", region: Fuzz.region, scope: scope,
                                                              issuedAt: 1_700_000_000, expiresAt: nil))
    }
    return Array(("Basic " + Fuzz.base64(Array("token:\(token)".utf8))).utf8)
}

private let state = ProxyState(verifier: Fuzz.verifier(), region: Fuzz.region, now: 1_700_000_000)
private let config = ProxyConfiguration(listenHost: "127.0.0.1", listenPort: 0, upstreamHost: "127.0.0.1", upstreamPort: 5000, region: Fuzz.region)
private let metrics = ProxyMetrics()

/// Counts the access log's allowed requests.
private final class AccessCounter: LogHandler, @unchecked Sendable {
    var allowed = 0
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String, function: String, line: UInt) {
        if message.description == "access", case .string("allow")? = metadata?["decision"] { allowed += 1 }
    }
}

private func replacing(_ input: [UInt8]) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(input.count + 512)
    var i = 0
    while i < input.count {
        if input[i] == UInt8(ascii: "@"), i + 3 < input.count, input[i + 3] == UInt8(ascii: "@") {
            let tag = (input[i + 1], input[i + 2])
            if tag == (UInt8(ascii: "R"), UInt8(ascii: "W")) { out += rw; i += 4; continue }
            if tag == (UInt8(ascii: "R"), UInt8(ascii: "O")) { out += ro; i += 4; continue }
        }
        out.append(input[i])
        i += 1
    }
    return out
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzForwarding(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = replacing(Fuzz.bytes(data, size))
    let loop = EmbeddedEventLoop()
    final class Upstreams { var channels: [EmbeddedChannel] = [] }
    let upstreams = Upstreams()
    let connector = UpstreamConnector { _ in
        let channel = EmbeddedChannel(loop: loop)
        upstreams.channels.append(channel)
        do {
            try UpstreamConnector.configureUpstreamPipeline(channel.pipeline.syncOperations)
            return channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 5000)).map { channel }
        } catch {
            return loop.makeFailedFuture(error)
        }
    }
    let counter = AccessCounter()
    let logger = Logger(label: "fuzz") { _ in counter }
    let client = EmbeddedChannel(loop: loop)
    Fuzz.must {
        try ProxyHandler.configureClientPipeline(client.pipeline.syncOperations, state: state, config: config, metrics: metrics,
                                                 logger: logger, connector: connector)
    }
    _ = client.connect(to: Fuzz.must { try SocketAddress(ipAddress: "10.1.2.3", port: 40000) })
    loop.run()

    // Two writes, so that a request split across reads is exercised too.
    let cut = input.isEmpty ? 0 : Int(input[0]) % (input.count + 1)
    for part in [input[..<cut], input[cut...]] where !part.isEmpty {
        _ = try? client.writeInbound(client.allocator.buffer(bytes: part))
        loop.run()
    }

    // Answer every complete upstream request until nothing moves.
    var wire: [ObjectIdentifier: [UInt8]] = [:]
    var answered: [ObjectIdentifier: Int] = [:]
    var parsed: [ObjectIdentifier: UpstreamParse] = [:]
    for _ in 0..<256 {
        var progress = false
        for channel in upstreams.channels {
            let id = ObjectIdentifier(channel)
            while let out = try? channel.readOutbound(as: IOData.self) {
                if case .byteBuffer(let b) = out { wire[id, default: []] += Array(b.readableBytesView) }
            }
            let parse = UpstreamParse(wire[id] ?? [])
            parsed[id] = parse
            while answered[id, default: 0] < parse.complete.count && channel.isActive {
                answered[id, default: 0] += 1
                _ = try? channel.writeInbound(channel.allocator.buffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
                progress = true
            }
        }
        loop.run()
        if !progress { break }
    }

    var total = 0
    for (_, parse) in parsed {
        Fuzz.check(parse.violation == nil, "upstream bytes: \(parse.violation ?? "")")
        total += parse.complete.count
    }
    // Each complete upstream request was answered, so each was logged as allowed; and nothing
    // went upstream that was not allowed.
    Fuzz.check(total == counter.allowed, "\(total) requests upstream, \(counter.allowed) allowed")
    _ = try? client.finish()
    for channel in upstreams.channels { _ = try? channel.finish() }
    return 0
}

/// The upstream byte stream as the registry (Go's net/http) would frame it, checked against the
/// proxy's rules.
struct UpstreamParse {
    var complete: [String] = []
    var violation: String?

    init(_ bytes: [UInt8]) {
        var i = 0
        while i < bytes.count {
            guard let headEnd = Self.find(bytes, [13, 10, 13, 10], from: i) else {
                violation = "a partial request head"
                return
            }
            let lines = bytes[i..<headEnd].split(separator: 10, omittingEmptySubsequences: false).map { line -> ArraySlice<UInt8> in
                line.last == 13 ? line.dropLast() : line
            }
            let requestLine = String(decoding: lines[0], as: UTF8.self)
            let parts = requestLine.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 3, parts[2] == "HTTP/1.1" else { violation = "request line \(requestLine.prefix(80))"; return }
            let method = String(parts[0])
            var lengths: [String] = [], encodings: [String] = [], forwardedFor = 0, forwardedProto = 0
            for line in lines.dropFirst() {
                guard let first = line.first, first != 32, first != 9 else { violation = "a folded or empty header line"; return }
                guard !line.contains(where: { ($0 < 32 && $0 != 9) || $0 == 127 }) else { violation = "a control byte in a header"; return }
                guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { violation = "a header without a colon"; return }
                let name = String(decoding: line[line.startIndex..<colon], as: UTF8.self).lowercased()
                let value = String(decoding: line[(colon + 1)...], as: UTF8.self).trimmingCharacters(in: [" ", "\t"])
                switch name {
                case "content-length": lengths.append(value)
                case "transfer-encoding": encodings.append(value)
                case "authorization", "proxy-authorization": violation = "credentials forwarded"; return
                case "x-forwarded-for": forwardedFor += 1
                case "x-forwarded-proto": forwardedProto += 1
                case "forwarded", "x-forwarded-host", "x-real-ip": violation = "a client's forwarding header \(name)"; return
                default: if name.contains(" ") || name.isEmpty { violation = "a header name with a space"; return }
                }
            }
            guard forwardedFor == 1, forwardedProto == 1 else { violation = "X-Forwarded-For/-Proto not the proxy's own"; return }
            var bodyEnd = headEnd + 4
            switch (lengths.count, encodings.count) {
            case (0, 0):
                guard method == "GET" || method == "HEAD" || method == "DELETE" else { violation = "\(method) without framing"; return }
            case (1, 0):
                guard method != "GET" && method != "HEAD" && method != "DELETE" else { violation = "\(method) with a Content-Length"; return }
                guard let n = Int(lengths[0]), lengths[0].allSatisfy(\.isNumber) else { violation = "Content-Length \(lengths[0])"; return }
                bodyEnd += n
                if bodyEnd > bytes.count { return }  // the client has not sent the rest yet
            case (0, 1):
                guard encodings[0] == "chunked", method == "PUT" || method == "PATCH" else { violation = "Transfer-Encoding \(encodings[0]) on \(method)"; return }
                while true {
                    guard let lineEnd = Self.find(bytes, [13, 10], from: bodyEnd) else { return }  // unfinished
                    guard let size = Int(String(decoding: bytes[bodyEnd..<lineEnd], as: UTF8.self), radix: 16), size >= 0 else {
                        violation = "a chunk size line"; return
                    }
                    bodyEnd = lineEnd + 2 + size
                    if size == 0 {
                        // No trailers: the final CRLF follows at once.
                        guard bodyEnd + 2 <= bytes.count else { return }
                        guard bytes[bodyEnd] == 13, bytes[bodyEnd + 1] == 10 else { violation = "trailers forwarded"; return }
                        bodyEnd += 2
                        break
                    }
                    guard bodyEnd + 2 <= bytes.count else { return }
                    guard bytes[bodyEnd] == 13, bytes[bodyEnd + 1] == 10 else { violation = "a chunk without its CRLF"; return }
                    bodyEnd += 2
                }
            default:
                violation = "\(lengths.count) Content-Length and \(encodings.count) Transfer-Encoding headers"
                return
            }
            complete.append(requestLine)
            i = bodyEnd
        }
    }

    static func find(_ bytes: [UInt8], _ needle: [UInt8], from: Int) -> Int? {
        guard bytes.count >= needle.count, from <= bytes.count - needle.count else { return nil }
        for start in from...(bytes.count - needle.count) where bytes[start] == needle[0] {
            if bytes[start..<(start + needle.count)].elementsEqual(needle) { return start }
        }
        return nil
    }
}
