import RegTokenProxyCore
import NIOCore

/// On a plain-HTTP listener, closes a connection whose first byte starts a TLS handshake
/// (0x16): clients such as skopeo with `--tls-verify=false` try TLS first and fall back to HTTP
/// when the connection is closed cleanly, which an HTTP error response would not be.
final class PlainTextGuard: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        if buffer.readableBytes > 0, buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) == 0x16 {
            context.close(promise: nil)
            return
        }
        context.fireChannelRead(data)
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}

@available(*, unavailable)
extension PlainTextGuard: Sendable {}
