import NIOCore
import NIOHTTP1
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

// bench-floor [--http | --bytes] LISTEN-PORT UPSTREAM-PORT: each connection accepted on 127.0.0.1 gets its
// own connection to the upstream on the same event loop (as `regtoken proxy` does).
//
// - Without --http, bytes are copied both ways, flushed once per read batch. No HTTP, no checks,
//   no log: what any proxy on SwiftNIO pays per exchange before it looks at a request.
// - With --http, each side runs SwiftNIO's HTTP/1 codecs (the ones `regtoken proxy` runs: the
//   server pipeline towards the client, the client handlers towards the upstream) and request
//   and response parts are handed across as they are. No checks, no log: what a proxy on
//   NIOHTTP1 pays before it decides anything.
// - With --bytes, each side reads and writes HTTP/1.1 on the bytes (`Head`, `Messages`): the
//   same work without NIOHTTP1, as a cost model of a byte-level HTTP layer (GET and bodies by
//   Content-Length only).

/// What every forwarder here shares: the other side (once connected; both channels share the
/// event loop), what was read before it was connected, one flush per read batch, and closing the
/// other side with this one.
class Relay<Out: Sendable>: @unchecked Sendable {
    var peer: (any Channel)?
    private var early: [Out] = []

    init(peer: (any Channel)? = nil) { self.peer = peer }

    func send(_ out: Out) {
        if let peer { peer.write(out, promise: nil) } else { early.append(out) }
    }

    func connected(to peer: any Channel) {
        self.peer = peer
        for out in early { peer.write(out, promise: nil) }
        early = []
        peer.flush()
    }

    func channelReadComplete(context: ChannelHandlerContext) { peer?.flush() }

    func channelInactive(context: ChannelHandlerContext) { peer?.close(promise: nil) }
}

/// One side of a connection pair: what it reads is written to the other side.
final class Copy: Relay<ByteBuffer>, ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) { send(unwrapInboundIn(data)) }
}

/// The client's side with --http: request parts to the upstream as client request parts.
final class RequestParts: Relay<HTTPClientRequestPart>, ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): send(.head(head))
        case .body(let bytes): send(.body(.byteBuffer(bytes)))
        case .end(let trailers): send(.end(trailers))
        }
    }
}

/// The upstream's side with --http: response parts to the client as server response parts.
final class ResponseParts: Relay<HTTPServerResponsePart>, ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): send(.head(head))
        case .body(let bytes): send(.body(.byteBuffer(bytes)))
        case .end(let trailers): send(.end(trailers))
        }
    }
}

// MARK: --bytes: HTTP/1.1 read and written on the bytes

/// What a byte-level HTTP/1.1 layer would do per message, as a cost model (GET and bodies by
/// Content-Length only; anything else closes the connection): the head is found and checked
/// byte by byte (tokens, no control bytes, CRLF line ends), its fields located as ranges, and a
/// new head written from them, less hop-by-hop fields, plus the forwarding fields; the body is
/// copied by its length.
enum Head {
    static func isTChar(_ c: UInt8) -> Bool {
        switch c {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
             UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
             UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"): true
        default: false
        }
    }

    /// Parses a head in `b` (ending with CRLF CRLF) and writes the forwarded head into `out`;
    /// returns the body length, or nil when the head is not one this model takes.
    static func rewrite(_ b: UnsafeRawBufferPointer, into out: inout ByteBuffer, request: Bool) -> Int? {
        var i = 0
        // The first line: three parts separated by single spaces, checked, copied as they are.
        let lineEnd = b.firstIndex(of: 0x0D) ?? b.count
        guard lineEnd + 1 < b.count, b[lineEnd + 1] == 0x0A else { return nil }
        while i < lineEnd, request ? isTChar(b[i]) : b[i] != 0x20 { i += 1 }
        guard i < lineEnd, b[i] == 0x20 else { return nil }
        for k in i + 1..<lineEnd where b[k] < 0x20 || b[k] == 0x7F { return nil }
        out.writeBytes(UnsafeRawBufferPointer(rebasing: b[0..<lineEnd + 2]))
        i = lineEnd + 2
        var length = 0
        while i < b.count {
            if b[i] == 0x0D {
                guard i + 1 < b.count, b[i + 1] == 0x0A else { return nil }
                if request { out.writeStaticString("X-Forwarded-Proto: http\r\nX-Forwarded-For: 127.0.0.1\r\n") }
                out.writeStaticString("\r\n")
                return length
            }
            let nameStart = i
            while i < b.count, isTChar(b[i]) { i += 1 }
            guard i > nameStart, i < b.count, b[i] == UInt8(ascii: ":") else { return nil }
            let name = UnsafeRawBufferPointer(rebasing: b[nameStart..<i])
            i += 1
            while i < b.count, b[i] == 0x20 || b[i] == 0x09 { i += 1 }
            let valueStart = i
            while i < b.count, b[i] >= 0x20 && b[i] != 0x7F || b[i] == 0x09 { i += 1 }
            guard i + 1 < b.count, b[i] == 0x0D, b[i + 1] == 0x0A else { return nil }
            var valueEnd = i
            while valueEnd > valueStart, b[valueEnd - 1] == 0x20 || b[valueEnd - 1] == 0x09 { valueEnd -= 1 }
            i += 2
            let value = UnsafeRawBufferPointer(rebasing: b[valueStart..<valueEnd])
            if equalsLower(name, "content-length") {
                var n = 0
                for c in value { guard c >= 0x30 && c <= 0x39, n < 1 << 40 else { return nil }; n = n * 10 + Int(c - 0x30) }
                length = n
                out.writeBytes(UnsafeRawBufferPointer(rebasing: b[nameStart..<i]))
            } else if equalsLower(name, "transfer-encoding") {
                return nil
            } else if request && (equalsLower(name, "connection") || equalsLower(name, "keep-alive") || equalsLower(name, "authorization")) {
                // (A response's Connection goes through: the upstream's close after its
                // keep-alive request limit is the client's too.)
                continue
            } else {
                out.writeBytes(UnsafeRawBufferPointer(rebasing: b[nameStart..<i]))
            }
        }
        return nil
    }

    static func equalsLower(_ a: UnsafeRawBufferPointer, _ lower: StaticString) -> Bool {
        guard a.count == lower.utf8CodeUnitCount else { return false }
        let l = lower.utf8Start
        for k in 0..<a.count where a[k] | 0x20 != l[k] { return false }
        return true
    }
}

/// One side with --bytes: reads messages (head, then a body of its length), writes each
/// rewritten to the other side.
final class Messages: Relay<ByteBuffer>, ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer

    let request: Bool
    private var pending: ByteBuffer?
    private var bodyLeft = 0

    init(request: Bool, peer: (any Channel)? = nil) {
        self.request = request
        super.init(peer: peer)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if var p = pending {
            p.writeBuffer(&bytes)
            bytes = p
            pending = nil
        }
        while bytes.readableBytes > 0 {
            if bodyLeft > 0 {
                let n = min(bodyLeft, bytes.readableBytes)
                send(bytes.readSlice(length: n)!)
                bodyLeft -= n
                continue
            }
            let end = bytes.withUnsafeReadableBytes { b -> Int? in
                guard b.count >= 4 else { return nil }
                for k in 3..<b.count where b[k] == 0x0A && b[k - 1] == 0x0D && b[k - 2] == 0x0A && b[k - 3] == 0x0D { return k + 1 }
                return nil
            }
            guard let end else {
                pending = bytes
                return
            }
            var out = context.channel.allocator.buffer(capacity: end + 64)
            let length = bytes.withUnsafeReadableBytes { Head.rewrite(UnsafeRawBufferPointer(rebasing: $0[0..<end]), into: &out, request: request) }
            guard let length else {
                context.close(promise: nil)
                return
            }
            bytes.moveReaderIndex(forwardBy: end)
            send(out)
            bodyLeft = length
        }
    }

}

var arguments = Array(CommandLine.arguments.dropFirst())
let http = arguments.first == "--http"
let bytesHTTP = arguments.first == "--bytes"
if http || bytesHTTP { arguments.removeFirst() }
guard arguments.count == 2, let listenPort = Int(arguments[0]), let upstreamPort = Int(arguments[1]) else {
    print("usage: bench-floor [--http | --bytes] LISTEN-PORT UPSTREAM-PORT")
    exit(64)
}
let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
let server = try ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 1024)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
    .childChannelInitializer { client in
        let upstream = ClientBootstrap(group: client.eventLoop).channelOption(.socketOption(.tcp_nodelay), value: 1)
        if http {
            let requests = RequestParts()
            return client.eventLoop.makeCompletedFuture {
                try client.pipeline.syncOperations.configureHTTPServerPipeline(withPipeliningAssistance: false, withErrorHandling: false)
                try client.pipeline.syncOperations.addHandler(requests)
            }.flatMap {
                upstream.channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(ResponseParts(peer: client))
                    }
                }
                .connect(host: "127.0.0.1", port: upstreamPort)
                .map { requests.connected(to: $0) }
            }
        }
        if bytesHTTP {
            let fromClient = Messages(request: true)
            let fromUpstream = Messages(request: false, peer: client)
            return client.pipeline.addHandler(fromClient).flatMap {
                upstream.channelInitializer { $0.pipeline.addHandler(fromUpstream) }
                    .connect(host: "127.0.0.1", port: upstreamPort)
                    .map { fromClient.connected(to: $0) }
            }
        }
        let fromClient = Copy()
        let fromUpstream = Copy(peer: client)
        return client.pipeline.addHandler(fromClient).flatMap {
            upstream.channelInitializer { $0.pipeline.addHandler(fromUpstream) }
                .connect(host: "127.0.0.1", port: upstreamPort)
                .map { fromClient.connected(to: $0) }
        }
    }
    .bind(host: "127.0.0.1", port: listenPort)
    .wait()
try server.closeFuture.wait()
