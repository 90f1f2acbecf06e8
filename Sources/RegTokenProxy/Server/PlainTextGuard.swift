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

/// On a TLS listener, answers a connection whose first byte starts a plain HTTP request (an ASCII
/// letter, where a TLS handshake starts with 0x16) with a 400 that says to use https, as nginx
/// does, instead of a TLS alert the client shows as garbage; then closes it.
final class PlainHTTPOnTLSGuard: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    static let answer: String = {
        let body = #"{"errors":[{"code":"UNSUPPORTED","message":"plain HTTP was sent to the HTTPS port: use https://"}]}"#
        return "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n" + body
    }()

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        guard buffer.readableBytes > 0, let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return }
        if (first >= 0x41 && first <= 0x5A) || (first >= 0x61 && first <= 0x7A) {
            let out = context.channel.allocator.buffer(string: Self.answer)
            context.writeAndFlush(wrapOutboundOut(out)).whenComplete { _ in context.close(promise: nil) }
            return
        }
        context.fireChannelRead(data)
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}
