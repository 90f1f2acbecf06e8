import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

// bench-floor LISTEN-PORT UPSTREAM-PORT: each connection accepted on 127.0.0.1 gets its own
// connection to the upstream on the same event loop (as `regtoken proxy` does), and bytes are
// copied both ways, flushed once per read batch. No HTTP, no checks, no log: what any proxy on
// SwiftNIO pays per exchange before it looks at a request.

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

let arguments = CommandLine.arguments
guard arguments.count == 3, let listenPort = Int(arguments[1]), let upstreamPort = Int(arguments[2]) else {
    print("usage: bench-floor LISTEN-PORT UPSTREAM-PORT")
    exit(64)
}
let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
let server = try ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 1024)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
    .childChannelInitializer { client in
        let fromClient = Copy()
        let fromUpstream = Copy()
        fromUpstream.peer = client
        return client.pipeline.addHandler(fromClient).flatMap {
            ClientBootstrap(group: client.eventLoop)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { $0.pipeline.addHandler(fromUpstream) }
                .connect(host: "127.0.0.1", port: upstreamPort)
                .map { upstream in fromClient.connected(to: upstream) }
        }
    }
    .bind(host: "127.0.0.1", port: listenPort)
    .wait()
try server.closeFuture.wait()
