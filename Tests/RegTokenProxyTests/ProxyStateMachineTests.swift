import Foundation
import NIOCore
import NIOEmbedded
import NIOHTTP1
import RegToken
@testable import RegTokenProxyCore
import Testing

/// The proxy connection's state machine, transition by transition: first as a plain value
/// (events in, actions out), then on `EmbeddedChannel`s with the real handler (pipelining,
/// backpressure both ways, the registry failing at each phase, timeouts, closes mid-body).
@Suite("The proxy's connection state machine")
struct ProxyStateMachineTests {
    typealias M = ProxyConnectionStateMachine

    // MARK: The value

    @Test("a refusal without a body: answered, the body's end returns to idle; with close: terminal")
    func refusals() {
        var m = M()
        #expect(m.requestHead(.refuse(status: 403, close: false), keepAlive: true, http10: false) == [.cancelHeaderTimer, .respondError(status: 403, close: false)])
        #expect(m.state == .refusing)
        #expect(m.requestBody() == [])
        #expect(m.requestEnd() == [.startHeaderTimer])
        #expect(m.state == .idle)
        #expect(m.requestHead(.refuse(status: 400, close: true), keepAlive: true, http10: false).contains(.respondError(status: 400, close: true)))
        #expect(m.state == .closing)
        // Nothing moves a closing connection.
        #expect(m.requestEnd() == [])
        #expect(m.requestBody() == [])
        #expect(m.clientReadRequested(upstreamWritable: true) == [])
        // Without keep-alive, a refusal closes too.
        var n = M()
        #expect(n.requestHead(.refuse(status: 401, close: false), keepAlive: false, http10: true).contains(.respondError(status: 401, close: true)))
        #expect(n.state == .closing)
    }

    @Test("forwarding: connect, queue, flush; response head, body, end; the next request reuses the registry connection")
    func forwarding() {
        var m = M()
        #expect(m.requestHead(.forward, keepAlive: true, http10: false) == [.cancelHeaderTimer, .forwardHead, .connectUpstream])
        #expect(m.requestBody() == [.forwardBody])
        #expect(m.requestEnd() == [.forwardEnd])  // no response timer before the registry is connected
        #expect(m.upstreamConnected() == [.flushPending, .startResponseTimer])
        #expect(m.responseHead(status: 100, upstreamKeepAlive: true, hasContentLength: false) == [])  // informational
        #expect(m.responseHead(status: 200, upstreamKeepAlive: true, hasContentLength: true) == [.cancelResponseTimer, .writeResponseHead(close: false)])
        #expect(m.responseBody() == [.writeResponseBody])
        #expect(m.responseEnd() == [.logAllowed, .startHeaderTimer, .writeResponseEnd(close: false)])
        #expect(m.state == .idle)
        // Second request: the registry connection is kept.
        #expect(m.requestHead(.forward, keepAlive: true, http10: false) == [.cancelHeaderTimer, .forwardHead])
        #expect(m.requestEnd() == [.forwardEnd, .startResponseTimer])
        // The registry says it closes after this response: dropped, and the next connects anew.
        _ = m.responseHead(status: 204, upstreamKeepAlive: false, hasContentLength: true)
        #expect(m.responseEnd() == [.logAllowed, .dropUpstream, .startHeaderTimer, .writeResponseEnd(close: false)])
        #expect(m.requestHead(.forward, keepAlive: true, http10: false).contains(.connectUpstream))
    }

    @Test("a response before the request's body ended, an HTTP/1.0 client without a length, no keep-alive: the connection closes after the response")
    func closeAfterResponse() {
        var early = M()
        _ = early.requestHead(.forward, keepAlive: true, http10: false)
        _ = early.upstreamConnected()
        _ = early.requestBody()
        _ = early.responseHead(status: 413, upstreamKeepAlive: true, hasContentLength: true)
        #expect(early.responseEnd().contains(.writeResponseEnd(close: true)))
        #expect(early.state == .closing)
        #expect(early.requestBody() == [])  // the rest of the body is not forwarded

        var old = M()
        _ = old.requestHead(.forward, keepAlive: true, http10: true)
        _ = old.upstreamConnected()
        _ = old.requestEnd()
        #expect(old.responseHead(status: 200, upstreamKeepAlive: true, hasContentLength: false).contains(.writeResponseHead(close: true)))
        #expect(old.responseEnd().contains(.writeResponseEnd(close: true)))

        var once = M()
        _ = once.requestHead(.forward, keepAlive: false, http10: false)
        _ = once.upstreamConnected()
        _ = once.requestEnd()
        #expect(once.responseHead(status: 200, upstreamKeepAlive: true, hasContentLength: true).contains(.writeResponseHead(close: true)))
    }

    @Test("the registry failing at each phase: connect, before the response, mid-response, response timeout")
    func upstreamFailures() {
        var connect = M()
        _ = connect.requestHead(.forward, keepAlive: true, http10: false)
        #expect(connect.upstreamConnectFailed().suffix(2) == [.logUpstreamFailure(status: 502), .respondError(status: 502, close: true)])
        #expect(connect.state == .closing)

        var before = M()
        _ = before.requestHead(.forward, keepAlive: true, http10: false)
        _ = before.upstreamConnected()
        _ = before.requestEnd()
        #expect(before.upstreamClosed().suffix(2) == [.logUpstreamFailure(status: 502), .respondError(status: 502, close: true)])

        var mid = M()
        _ = mid.requestHead(.forward, keepAlive: true, http10: false)
        _ = mid.upstreamConnected()
        _ = mid.requestEnd()
        _ = mid.responseHead(status: 200, upstreamKeepAlive: true, hasContentLength: true)
        _ = mid.responseBody()
        #expect(mid.upstreamClosed().suffix(2) == [.logUpstreamFailure(status: 502), .closeClient])
        #expect(mid.state == .closing)

        var slow = M()
        _ = slow.requestHead(.forward, keepAlive: true, http10: false)
        _ = slow.upstreamConnected()
        _ = slow.requestEnd()
        #expect(slow.responseTimedOut().suffix(2) == [.logUpstreamFailure(status: 504), .respondError(status: 504, close: true)])
        // Once the response started, the response timer no longer applies.
        var started = M()
        _ = started.requestHead(.forward, keepAlive: true, http10: false)
        _ = started.upstreamConnected()
        _ = started.requestEnd()
        _ = started.responseHead(status: 200, upstreamKeepAlive: true, hasContentLength: true)
        #expect(started.responseTimedOut() == [])
        // A kept registry connection closing between requests is only forgotten.
        var between = M()
        _ = between.requestHead(.forward, keepAlive: true, http10: false)
        _ = between.upstreamConnected()
        _ = between.requestEnd()
        _ = between.responseHead(status: 200, upstreamKeepAlive: true, hasContentLength: true)
        _ = between.responseEnd()
        #expect(between.upstreamClosed() == [.dropUpstream])
        #expect(between.state == .idle)
        #expect(between.requestHead(.forward, keepAlive: true, http10: false).contains(.connectUpstream))
    }

    @Test("timeouts: the header timer closes an idle connection only; the idle timer closes any")
    func timeouts() {
        var m = M()
        _ = m.requestHead(.forward, keepAlive: true, http10: false)
        #expect(m.headerTimedOut() == [])
        var idle = M()
        #expect(idle.headerTimedOut().last == .closeClient)
        #expect(idle.state == .closing)
        var busy = M()
        _ = busy.requestHead(.forward, keepAlive: true, http10: false)
        #expect(busy.idleTimedOut().last == .closeClient)
    }

    @Test("backpressure both ways: reads held while the other side cannot take more, resumed when it can")
    func backpressure() {
        var m = M()
        _ = m.requestHead(.forward, keepAlive: true, http10: false)
        // Connecting: client reads wait for the connection.
        #expect(m.clientReadRequested(upstreamWritable: true) == [])
        #expect(m.clientReadHeld)
        #expect(m.upstreamConnected().contains(.readClient))
        // The registry side is full: hold; writable again: read.
        #expect(m.clientReadRequested(upstreamWritable: false) == [])
        #expect(m.upstreamBecameWritable() == [.readClient])
        #expect(m.upstreamBecameWritable() == [])  // nothing held any more
        // The client side is full: hold registry reads; writable again: read.
        #expect(m.upstreamReadRequested(clientWritable: false) == [])
        #expect(m.upstreamReadHeld)
        #expect(m.clientBecameWritable() == [.readUpstream])
        #expect(m.upstreamReadRequested(clientWritable: true) == [.readUpstream])
        // A client gone: everything stops and the registry connection goes.
        #expect(m.clientClosed().contains(.dropUpstream))
        #expect(!m.clientReadHeld && !m.upstreamReadHeld)
    }

    // MARK: On EmbeddedChannels, with the real handler

    static let state = ProxyPipelineTests.state
    static func token(_ scope: Scope) -> String { ProxyPipelineTests.token(scope) }

    func get(_ path: String = "/v2/acme/app/tags/list", _ scope: Scope = .pull) -> String {
        "GET \(path) HTTP/1.1\r\nHost: r\r\nAuthorization: \(Self.token(scope))\r\n\r\n"
    }

    @Test("pipelined: a refused request, an allowed one, another refused; each answered in order")
    func pipelinedMix() throws {
        let p = try ProxyPipeline(state: Self.state)
        p.send(get("/v2/globex/app/tags/list") + get() + "GET /v2/ HTTP/1.1\r\nHost: r\r\n\r\n")
        #expect(p.clientBytes().hasPrefix("HTTP/1.1 403"))
        #expect(p.upstreamBytes().hasPrefix("GET /v2/acme/app/tags/list HTTP/1.1\r\n"))
        p.respond("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        let rest = p.clientBytes()
        #expect(rest.hasPrefix("HTTP/1.1 200 OK\r\n") && rest.contains("ok") && rest.contains("HTTP/1.1 401 Unauthorized"), "\(rest)")
        #expect(p.client.isActive)
    }

    @Test("the registry unreachable: 502 with a Docker error, the connection closed")
    func connectFails() throws {
        let p = try ProxyPipeline(state: Self.state)
        p.connectFails = true
        p.send(get())
        let answer = p.clientBytes()
        #expect(answer.hasPrefix("HTTP/1.1 502") && answer.contains("UNAVAILABLE"), "\(answer)")
        #expect(!p.client.isActive)
    }

    @Test("the registry closing before and during its response: 502, or a cut response and a closed connection")
    func upstreamCloses() throws {
        let before = try ProxyPipeline(state: Self.state)
        before.send(get())
        _ = before.upstreamBytes()
        _ = try before.upstreams.last?.close().wait()
        before.loop.run()
        #expect(before.clientBytes().hasPrefix("HTTP/1.1 502"))
        #expect(!before.client.isActive)

        let during = try ProxyPipeline(state: Self.state)
        during.send(get())
        during.respond("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhal")
        _ = try during.upstreams.last?.close().wait()
        during.loop.run()
        let cut = during.clientBytes()
        #expect(cut.hasPrefix("HTTP/1.1 200 OK") && cut.hasSuffix("hal"), "\(cut)")
        #expect(!during.client.isActive)
    }

    @Test("the response timer: no answer in time is a 504; the header timer closes a connection that sends nothing")
    func timers() throws {
        let p = try ProxyPipeline(state: Self.state) { $0.upstreamResponseTimeout = .seconds(5) }
        p.send(get())
        p.loop.advanceTime(by: .seconds(4))
        #expect(p.clientBytes().isEmpty)
        p.loop.advanceTime(by: .seconds(2))
        #expect(p.clientBytes().hasPrefix("HTTP/1.1 504"))
        #expect(!p.client.isActive)

        let quiet = try ProxyPipeline(state: Self.state) { $0.headerTimeout = .seconds(3) }
        quiet.loop.advanceTime(by: .seconds(2))
        #expect(quiet.client.isActive)
        quiet.loop.advanceTime(by: .seconds(2))
        #expect(!quiet.client.isActive)

        // After a full exchange the header timer runs again for the next request.
        let again = try ProxyPipeline(state: Self.state) { $0.headerTimeout = .seconds(3) }
        again.send(get())
        again.loop.advanceTime(by: .seconds(10))  // a slow registry is not a slow client
        #expect(again.client.isActive)
        again.respond("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        again.loop.advanceTime(by: .seconds(4))
        #expect(!again.client.isActive)
    }

    @Test("the idle timeout: a connection with no traffic closes; a response streamed part after part keeps it open")
    func idleTimeout() throws {
        // The registry takes its time and the client waits: no traffic to or from the client.
        let silent = try ProxyPipeline(state: Self.state) { $0.idleTimeout = .seconds(3); $0.upstreamResponseTimeout = .seconds(30) }
        silent.send(get())
        silent.loop.advanceTime(by: .seconds(2))
        #expect(silent.client.isActive)
        silent.loop.advanceTime(by: .seconds(2))
        #expect(!silent.client.isActive)
        #expect(silent.clientBytes().isEmpty, "an idle connection is closed, not answered")

        // A registry that sends its head a byte at a time writes nothing to the client: its
        // reads are no activity on the client's connection either.
        let trickle = try ProxyPipeline(state: Self.state) { $0.idleTimeout = .seconds(3); $0.upstreamResponseTimeout = .seconds(30) }
        trickle.send(get())
        for byte in "HTTP/1.1" {
            trickle.loop.advanceTime(by: .seconds(1))
            trickle.respond(String(byte))
        }
        #expect(!trickle.client.isActive)
        #expect(trickle.clientBytes().isEmpty)

        // A slow download: one byte every 2 s for 12 s, each a write to the client.
        let slow = try ProxyPipeline(state: Self.state) { $0.idleTimeout = .seconds(3); $0.headerTimeout = .seconds(30) }
        slow.send(get())
        slow.respond("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n")
        for byte in "abcdef" {
            slow.loop.advanceTime(by: .seconds(2))
            #expect(slow.client.isActive)
            slow.respond(String(byte))
        }
        #expect(slow.clientBytes().hasSuffix("abcdef"))
        // Then nothing: the idle timeout (before the 30 s header timeout) closes it.
        slow.loop.advanceTime(by: .seconds(2))
        #expect(slow.client.isActive)
        slow.loop.advanceTime(by: .seconds(2))
        #expect(!slow.client.isActive)
    }

    @Test("a connection closing after its response, whose last write never goes out, is closed by the idle timeout")
    func idleWhileClosing() throws {
        let p = try ProxyPipeline(state: Self.state) { $0.idleTimeout = .seconds(3) }
        // A client that stopped reading: nothing written to it ever completes.
        try p.client.pipeline.syncOperations.addHandler(HeldWrites(), position: .first)
        p.send("GET /v2/acme/app/tags/list HTTP/1.1\r\nHost: r\r\nConnection: close\r\nAuthorization: \(Self.token(.pull))\r\n\r\n")
        p.respond("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
        p.loop.advanceTime(by: .seconds(2))
        #expect(p.client.isActive, "waiting for the last write, within the idle timeout")
        p.loop.advanceTime(by: .seconds(2))
        #expect(!p.client.isActive)
    }

    @Test("a close that takes its time (as TLS's goodbye does) is asked for again one idle period later, not in a loop")
    func idleCloseRetried() throws {
        let p = try ProxyPipeline(state: Self.state) { $0.idleTimeout = .seconds(3) }
        let closes = HeldCloses()
        try p.client.pipeline.syncOperations.addHandler(closes, position: .first)
        p.loop.advanceTime(by: .milliseconds(3500))
        #expect(closes.count == 1)
        p.loop.advanceTime(by: .seconds(3))
        #expect(closes.count == 2)
        #expect(p.client.isActive, "the close is still held")
        closes.release(p.client)
        #expect(!p.client.isActive)
    }

    @Test("the client closing during a request body: the registry connection is dropped, nothing more forwarded")
    func clientClosesMidBody() throws {
        let p = try ProxyPipeline(state: Self.state)
        p.send("PATCH /v2/acme/app/blobs/uploads/u1 HTTP/1.1\r\nHost: r\r\nAuthorization: \(Self.token(.pushPull))\r\n"
               + "Content-Type: application/octet-stream\r\nContent-Length: 10\r\n\r\nhalf")
        #expect(p.upstreamBytes().hasSuffix("\r\n\r\nhalf"))
        let upstream = try #require(p.upstreams.last)
        _ = try p.client.close().wait()
        p.loop.run()
        #expect(!upstream.isActive)
    }

    @Test("backpressure on the channels: a full client holds registry reads, a full registry holds client reads")
    func channelBackpressure() throws {
        let p = try ProxyPipeline(state: Self.state)
        p.send(get())
        let upstream = try #require(p.upstreams.last)
        // The client cannot take more: a read on the registry side is held.
        p.client.isWritable = false
        p.client.pipeline.fireChannelWritabilityChanged()
        let handler = try upstream.pipeline.syncOperations.handler(type: UpstreamHandler.self)
        #expect(handler.owner?.upstreamReadRequested() == false)
        p.client.isWritable = true
        p.client.pipeline.fireChannelWritabilityChanged()
        #expect(handler.owner?.upstreamReadRequested() == true)
        // The registry side cannot take more: client reads are held, and resumed when it can.
        p.respond("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        p.send("PATCH /v2/acme/app/blobs/uploads/u1 HTTP/1.1\r\nHost: r\r\nAuthorization: \(Self.token(.pushPull))\r\n"
               + "Content-Type: application/octet-stream\r\nContent-Length: 4\r\n\r\n")
        upstream.isWritable = false
        let before = try readCount(p)
        p.client.pipeline.read()
        #expect(try readCount(p) == before, "a client read went through while the registry side was full")
        upstream.isWritable = true
        upstream.pipeline.fireChannelWritabilityChanged()
        #expect(try readCount(p) == before + 1, "the held client read was not resumed")
    }

    @Test("reads are not withheld while a response is awaited (no read interest switched off and on per request); a pipelined request waits its turn with reads held")
    func readsNotWithheld() throws {
        let p = try ProxyPipeline(state: Self.state)
        let start = try readCount(p)
        p.send(get())
        // The request is forwarded, its answer not come yet: a read asked for now goes through.
        p.client.pipeline.read()
        #expect(try readCount(p) == start + 1)
        // A second request pipelined behind it is queued, not forwarded, and further reads wait.
        p.send(get("/v2/acme/app/manifests/v1"))
        #expect(!p.upstreamBytes().contains("manifests/v1"))
        p.client.pipeline.read()
        #expect(try readCount(p) == start + 1, "a read went through while a pipelined request waited")
        p.respond("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        // The first answer went out; the queued request went to the registry; the held read resumed.
        #expect(p.upstreamBytes().contains("GET /v2/acme/app/manifests/v1 "))
        #expect(try readCount(p) == start + 2)
        p.respond("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nm1")
        let answers = p.clientBytes()
        #expect(answers.components(separatedBy: "HTTP/1.1 200 OK").count == 3 && answers.hasSuffix("m1"), "\(answers)")
    }

    @Test("bytes that are not HTTP behind a request whose answer is awaited: that answer first, then 400 and the close; alone: 400 at once")
    func malformedAfterPipelined() throws {
        let p = try ProxyPipeline(state: Self.state)
        p.send(get() + "HEAD /v2/acme/app/blobs/x\r\nAuthorization: x\r\n\r\n")
        #expect(p.clientBytes().isEmpty, "answered before the registry did")
        p.respond("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        let answers = p.clientBytes()
        #expect(answers.hasPrefix("HTTP/1.1 200 OK") && answers.contains("HTTP/1.1 400 Bad Request"), "\(answers)")
        #expect(answers.range(of: "ok")!.lowerBound < answers.range(of: "400")!.lowerBound)
        p.loop.run()
        #expect(!p.client.isActive)

        let alone = try ProxyPipeline(state: Self.state)
        alone.send("GARBAGE\r\n\r\n")
        #expect(alone.clientBytes().hasPrefix("HTTP/1.1 400 Bad Request"))
        alone.loop.run()
        #expect(!alone.client.isActive)
    }

    @Test("graceful drain: an idle connection closes at once; a busy one answers with Connection: close, then closes")
    func quiesce() throws {
        var idle = ProxyConnectionStateMachine()
        #expect(idle.quiesce().last == .closeClient)
        var busy = ProxyConnectionStateMachine()
        _ = busy.requestHead(.forward, keepAlive: true, http10: false)
        #expect(busy.quiesce() == [])
        _ = busy.upstreamConnected()
        _ = busy.requestEnd()
        #expect(busy.responseHead(status: 200, upstreamKeepAlive: true, hasContentLength: true).contains(.writeResponseHead(close: true)))
        #expect(busy.responseEnd().contains(.writeResponseEnd(close: true)))

        let p = try ProxyPipeline(state: Self.state)
        p.send(get())
        p.client.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        p.respond("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        let answer = p.clientBytes()
        #expect(answer.lowercased().contains("connection: close") && answer.hasSuffix("ok"), "\(answer)")
        p.loop.run()
        #expect(!p.client.isActive)
    }

    /// How many reads the client channel has been asked for (EmbeddedChannel counts them through
    /// a handler at the head of its pipeline).
    func readCount(_ p: ProxyPipeline) throws -> Int {
        if let counter = try? p.client.pipeline.syncOperations.handler(type: ReadCounter.self) { return counter.reads }
        try p.client.pipeline.syncOperations.addHandler(ReadCounter(), position: .first)
        return 0
    }

    final class ReadCounter: ChannelOutboundHandler {
        typealias OutboundIn = Any
        var reads = 0
        func read(context: ChannelHandlerContext) {
            reads += 1
            context.read()
        }
    }
}

/// Holds every write: neither passed on nor completed (a client whose socket never drains).
/// Closing fails them, as a socket closed with unsent data would.
private final class HeldWrites: ChannelOutboundHandler {
    typealias OutboundIn = IOData
    private var held: [EventLoopPromise<Void>] = []

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if let promise { held.append(promise) }
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        for promise in held { promise.fail(ChannelError.ioOnClosedChannel) }
        held = []
        context.close(mode: mode, promise: promise)
    }
}

/// Holds close requests (a close that waits for the peer), until released.
private final class HeldCloses: ChannelOutboundHandler {
    typealias OutboundIn = IOData
    private(set) var count = 0
    private var context: ChannelHandlerContext?

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        count += 1
        promise?.fail(ChannelError.alreadyClosed)
    }

    /// Lets one close through.
    func release(_ channel: EmbeddedChannel) {
        context?.close(promise: nil)
        channel.embeddedEventLoop.run()
    }
}
