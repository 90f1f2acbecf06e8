import NIOCore

/// On a TLS listener, answers a connection whose first byte starts a plain HTTP request (an ASCII
/// letter, where a TLS handshake starts with 0x16) with a 400 that says to use https, as nginx
/// does, instead of a TLS alert the client shows as garbage; then closes it. Goes before the TLS
/// handler; removes itself after the first bytes of a TLS connection. `regtoken proxy` and
/// `regtoken serve` both use it, each with its own error body.
package final class PlainHTTPOnTLSGuard: ChannelInboundHandler, RemovableChannelHandler {
    package typealias InboundIn = ByteBuffer
    package typealias OutboundOut = ByteBuffer

    /// The registry API's error body (`regtoken proxy`).
    package static let registryBody = #"{"errors":[{"code":"UNSUPPORTED","message":"plain HTTP was sent to the HTTPS port: use https://"}]}"#

    private let answer: String

    /// - Parameter body: the JSON error body of the 400.
    package init(body: String) {
        answer = "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n" + body
    }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        guard buffer.readableBytes > 0, let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return }
        if (first >= 0x41 && first <= 0x5A) || (first >= 0x61 && first <= 0x7A) {
            let out = context.channel.allocator.buffer(string: answer)
            context.writeAndFlush(wrapOutboundOut(out)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
            return
        }
        context.fireChannelRead(data)
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}

@available(*, unavailable)
extension PlainHTTPOnTLSGuard: Sendable {}
