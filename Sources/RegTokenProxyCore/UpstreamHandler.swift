import NIOCore
import NIOHTTP1

/// The registry side of one client connection: hands response parts to its ``ProxyHandler``
/// (on the same event loop) and stops reading while the client cannot take more.
final class UpstreamHandler: ChannelDuplexHandler {
    typealias InboundIn = RegistryResponsePart
    typealias OutboundIn = RegistryRequestPart
    typealias OutboundOut = RegistryRequestPart

    /// Set once connected; cleared when the proxy lets go of this connection.
    var owner: ProxyHandler?
    private var context: ChannelHandlerContext?

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        owner?.upstreamRead(unwrapInboundIn(data), from: context.channel)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        owner?.upstreamReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { owner?.upstreamBecameWritable() }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        owner?.upstreamClosed(context.channel)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A TLS handshake refused (an untrusted certificate, a wrong name) or a broken connection:
        // the owner answers 502 when the channel closes; it logs why first.
        owner?.upstreamFailed(error)
        context.close(promise: nil)
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
