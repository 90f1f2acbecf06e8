import NIOCore
import NIOHTTP1
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

// bench-floor [--http] LISTEN-PORT UPSTREAM-PORT: each connection accepted on 127.0.0.1 gets its
// own connection to the upstream on the same event loop (as `regtoken proxy` does).
//
// - Without --http, bytes are copied both ways, flushed once per read batch. No HTTP, no checks,
//   no log: what any proxy on SwiftNIO pays per exchange before it looks at a request.
// - With --http, each side runs SwiftNIO's HTTP/1 codecs (the ones `regtoken proxy` runs: the
//   server pipeline towards the client, the client handlers towards the upstream) and request
//   and response parts are handed across as they are. No checks, no log: what a proxy on
//   NIOHTTP1 pays before it decides anything.

/// One side of a connection pair: what it reads is written to the other side.
final class Copy: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// The other side, once connected (event-loop confined, as both channels share the loop).
    var peer: (any Channel)?
    private var early: [ByteBuffer] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        if let peer { peer.write(bytes, promise: nil) } else { early.append(bytes) }
    }

    func channelReadComplete(context: ChannelHandlerContext) { peer?.flush() }

    func channelInactive(context: ChannelHandlerContext) { peer?.close(promise: nil) }

    func connected(to peer: any Channel) {
        self.peer = peer
        for bytes in early { peer.write(bytes, promise: nil) }
        early = []
        peer.flush()
    }
}

/// The client's side with --http: request parts to the upstream as client request parts.
final class RequestParts: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart

    var peer: (any Channel)?
    private var early: [HTTPClientRequestPart] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part: HTTPClientRequestPart
        switch unwrapInboundIn(data) {
        case .head(let head): part = .head(head)
        case .body(let bytes): part = .body(.byteBuffer(bytes))
        case .end(let trailers): part = .end(trailers)
        }
        if let peer { peer.write(part, promise: nil) } else { early.append(part) }
    }

    func channelReadComplete(context: ChannelHandlerContext) { peer?.flush() }

    func channelInactive(context: ChannelHandlerContext) { peer?.close(promise: nil) }

    func connected(to peer: any Channel) {
        self.peer = peer
        for part in early { peer.write(part, promise: nil) }
        early = []
        peer.flush()
    }
}

/// The upstream's side with --http: response parts to the client as server response parts.
final class ResponseParts: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart

    let peer: any Channel

    init(peer: any Channel) { self.peer = peer }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part: HTTPServerResponsePart
        switch unwrapInboundIn(data) {
        case .head(let head): part = .head(head)
        case .body(let bytes): part = .body(.byteBuffer(bytes))
        case .end(let trailers): part = .end(trailers)
        }
        peer.write(part, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) { peer.flush() }

    func channelInactive(context: ChannelHandlerContext) { peer.close(promise: nil) }
}

var arguments = Array(CommandLine.arguments.dropFirst())
let http = arguments.first == "--http"
if http { arguments.removeFirst() }
guard arguments.count == 2, let listenPort = Int(arguments[0]), let upstreamPort = Int(arguments[1]) else {
    print("usage: bench-floor [--http] LISTEN-PORT UPSTREAM-PORT")
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
        let fromClient = Copy()
        let fromUpstream = Copy()
        fromUpstream.peer = client
        return client.pipeline.addHandler(fromClient).flatMap {
            upstream.channelInitializer { $0.pipeline.addHandler(fromUpstream) }
                .connect(host: "127.0.0.1", port: upstreamPort)
                .map { fromClient.connected(to: $0) }
        }
    }
    .bind(host: "127.0.0.1", port: listenPort)
    .wait()
try server.closeFuture.wait()
