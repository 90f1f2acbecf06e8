import NIOCore
import NIOHTTP1

/// The registry side of one client connection: reads the registry's responses with its own
/// ``HTTP1ClientCodec`` (run here, not as a handler of its own: no pipeline hop per part) and
/// hands their parts to its ``ProxyHandler`` (on the same event loop), writes the requests the
/// proxy sends (``send(_:)``), and stops reading while the client cannot take more.
///
/// Stored properties `@exclusivity(unchecked)`, for the reason and on the terms ``ProxyHandler`` gives.
final class UpstreamHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Set once connected; cleared when the proxy lets go of this connection.
    @exclusivity(unchecked) var owner: ProxyHandler?
    @exclusivity(unchecked) private var context: ChannelHandlerContext?
    private let codec = HTTP1ClientCodec()

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let channel = context.channel
        codec.decode(unwrapInboundIn(data), allocator: channel.allocator) { part in
            self.owner?.upstreamRead(part, from: channel)
        } error: { error in
            self.failed(error, context: context)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        owner?.upstreamReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { owner?.upstreamBecameWritable() }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        // A body framed by the close ends here.
        if codec.closed() { owner?.upstreamRead(.end, from: context.channel) }
        owner?.upstreamClosed(context.channel)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failed(error, context: context)
    }

    /// A TLS handshake refused (an untrusted certificate, a wrong name), a broken connection, or
    /// a response that is not HTTP/1.1: nothing more is read; the owner answers 502 when the
    /// channel closes, and logs why first.
    private func failed(_ error: any Error, context: ChannelHandlerContext) {
        codec.stop()
        owner?.upstreamFailed(error)
        context.close(promise: nil)
    }

    /// Writes a request part to the registry (flushed by ``flush()``).
    func send(_ part: RegistryRequestPart) {
        guard let context else { return }
        if let error = codec.encode(part, context: context, promise: nil) { failed(error, context: context) }
    }

    func flush() {
        context?.flush()
    }

    /// Backpressure: no reads from the registry while the client is not writable (the owner's
    /// state machine holds the read and asks for it again with ``readNow()``).
    func read(context: ChannelHandlerContext) {
        if let owner, !owner.upstreamReadRequested() { return }
        context.read()
    }

    func readNow() {
        context?.read()
    }
}

@available(*, unavailable)
extension UpstreamHandler: Sendable {}
