import NIOHTTP1

/// The state of one client connection of the proxy, as a plain value: each event (from the
/// client, the registry, a timer or backpressure) returns the actions the ``ProxyHandler`` must
/// perform, in order, as swift-nio's `NIOTypedHTTPServerUpgraderStateMachine` does. It does no I/O
/// and holds no channel, so every transition is tested on its own
/// (`Tests/RegTokenProxyTests/ProxyStateMachineTests.swift`).
///
/// A connection serves one request at a time (the ``ProxyHandler`` queues a pipelined request
/// until the one before it is answered, and reads no more from the client meanwhile):
///
/// ```
/// idle ──head, refused──▶ refusing ──end──▶ idle
///   │                         (a refusal that must close: closing)
///   └──head, allowed──▶ forwarding ──response end──▶ idle (or closing)
///                      (connecting → connected; request body up, response down)
/// any ──client gone, timeout, upstream failure, ambiguous request──▶ closing (terminal)
/// ```
///
/// The state changes before the actions run, so that an action that leads to the next event
/// (a write that completes at once, a queued request handed over) finds the state it expects.
struct ProxyConnectionStateMachine {
    enum State: Equatable {
        /// Waiting for a request head (the header timeout runs).
        case idle
        /// A refusal was answered; the request's body, if any, is read and dropped until its end.
        case refusing
        /// An allowed request: forwarded to the registry, its response streamed back.
        case forwarding(Exchange)
        /// The connection is being closed: nothing more is read, forwarded or answered.
        case closing
    }

    struct Exchange: Equatable {
        /// Request parts wait here while the registry connection is being opened.
        var connecting: Bool
        var requestEnded = false
        var responseStarted = false
        /// The client asked for keep-alive (and the proxy may keep the connection).
        var keepAlive: Bool
        /// The connection cannot be reused after this response.
        var closeAfterResponse = false
        /// The registry said it closes its side after this response.
        var upstreamCloses = false
        /// The client spoke HTTP/1.0 (no chunked response: a body without a length ends with the connection).
        var http10: Bool
    }

    enum Action: Equatable {
        case cancelHeaderTimer
        case startHeaderTimer
        case startResponseTimer
        case cancelResponseTimer
        /// Answer with a Docker error; close the connection once it is written when `close`.
        case respondError(status: Int, close: Bool)
        /// Open the registry connection; parts are queued until it is up.
        case connectUpstream
        /// Write the request head (and, once connected, every queued part) to the registry.
        case forwardHead
        case forwardBody
        case forwardEnd
        /// Write the queued parts, then flush.
        case flushPending
        /// Write the response head to the client, with `Connection: close` when `close`.
        case writeResponseHead(close: Bool)
        case writeResponseBody
        /// Write the response end; close the connection afterwards when `close`.
        case writeResponseEnd(close: Bool)
        /// Close the client connection now.
        case closeClient
        /// Let go of the registry connection (close it).
        case dropUpstream
        /// Reads held by backpressure may go on.
        case readClient
        case readUpstream
        /// Log the exchange: `error` for a failure of the registry (502, 504).
        case logAllowed
        case logUpstreamFailure(status: Int)
    }

    /// The actions of one event, in order: at most six, held in place (an array would be
    /// allocated for each of the several events of every request).
    struct Actions: Sequence, Equatable, ExpressibleByArrayLiteral, CustomStringConvertible {
        static let capacity = 6
        private var storage = InlineArray<6, Action>(repeating: .closeClient)
        private(set) var count = 0

        init() {}

        /// Two actions. (A literal whose elements carry values known only at run time makes an
        /// array for the literal's variadic parameter, one `malloc` an event: this does not.)
        init(_ first: Action, _ second: Action) {
            append(first)
            append(second)
        }

        // (Inlined, so that the optimizer can put the literal's elements in place rather than
        // make an array of them for the variadic parameter.)
        @inline(__always)
        init(arrayLiteral elements: Action...) {
            for element in elements { append(element) }
        }

        /// Appends an action; more than ``capacity`` is a programming error (it traps).
        mutating func append(_ action: Action) {
            precondition(count < Self.capacity, "more than \(Self.capacity) actions for one event")
            storage[count] = action
            count += 1
        }

        var last: Action? { count == 0 ? nil : storage[count - 1] }

        struct Iterator: IteratorProtocol {
            fileprivate let actions: Actions
            fileprivate var index = 0

            mutating func next() -> Action? {
                guard index < actions.count else { return nil }
                defer { index += 1 }
                return actions.storage[index]
            }
        }

        func makeIterator() -> Iterator { Iterator(actions: self) }

        static func == (a: Actions, b: Actions) -> Bool { a.elementsEqual(b) }

        static func + (a: Actions, b: Actions) -> Actions {
            var out = a
            out += b
            return out
        }

        static func += (a: inout Actions, b: Actions) {
            for action in b { a.append(action) }
        }

        var description: String { "\(Array(self))" }
    }

    private(set) var state: State = .idle
    /// A read from the client was held (the registry side cannot take more, or is connecting).
    private(set) var clientReadHeld = false
    /// A read from the registry was held (the client cannot take more).
    private(set) var upstreamReadHeld = false
    /// A registry connection is open and reusable.
    private(set) var hasUpstream = false
    /// The server is going away: the connection closes after the exchange in progress.
    private(set) var quiescing = false

    /// True when no exchange is in progress: a request head may be handled.
    var isIdle: Bool { state == .idle }

    // MARK: Client → proxy

    /// What the proxy decided on a request head.
    enum HeadDecision: Equatable {
        case forward
        /// Answer `status`; `close` when the request's framing is in doubt or its body will not be read.
        case refuse(status: Int, close: Bool)
    }

    /// A request head arrived and was decided on.
    mutating func requestHead(_ decision: HeadDecision, keepAlive: Bool, http10: Bool) -> Actions {
        guard case .idle = state else {
            // The pipelining assistant never delivers a head mid-exchange; if it happens, stop.
            return enterClosing() + [.closeClient]
        }
        switch decision {
        case .refuse(let status, let close):
            if close || !keepAlive || quiescing {
                return enterClosing() + [.respondError(status: status, close: true)]
            }
            state = .refusing
            return Actions(.cancelHeaderTimer, .respondError(status: status, close: false))
        case .forward:
            state = .forwarding(Exchange(connecting: !hasUpstream, keepAlive: keepAlive && !quiescing, http10: http10))
            return hasUpstream ? [.cancelHeaderTimer, .forwardHead] : [.cancelHeaderTimer, .forwardHead, .connectUpstream]
        }
    }

    mutating func requestBody() -> Actions {
        guard case .forwarding = state else { return [] }  // refused or closing: dropped
        return [.forwardBody]
    }

    mutating func requestEnd() -> Actions {
        switch state {
        case .refusing:
            if quiescing { return enterClosing() + [.closeClient] }
            state = .idle
            return [.startHeaderTimer]
        case .forwarding(var exchange):
            exchange.requestEnded = true
            state = .forwarding(exchange)
            var actions: Actions = [.forwardEnd]
            if !exchange.connecting && !exchange.responseStarted { actions.append(.startResponseTimer) }
            return actions
        case .idle, .closing:
            return []
        }
    }

    // MARK: Registry connection

    mutating func upstreamConnected() -> Actions {
        guard case .forwarding(var exchange) = state, exchange.connecting else { return [.dropUpstream] }
        exchange.connecting = false
        hasUpstream = true
        state = .forwarding(exchange)
        var actions: Actions = [.flushPending]
        if exchange.requestEnded { actions.append(.startResponseTimer) }
        if clientReadHeld {
            clientReadHeld = false
            actions.append(.readClient)
        }
        return actions
    }

    mutating func upstreamConnectFailed() -> Actions {
        guard case .forwarding = state else { return [] }
        return failUpstream(status: 502)
    }

    /// The registry connection closed (or failed).
    mutating func upstreamClosed() -> Actions {
        hasUpstream = false
        guard case .forwarding(let exchange) = state else { return [.dropUpstream] }
        if exchange.responseStarted {
            // Part of a response went out: the client can only learn of the failure by the close.
            return enterClosing() + [.logUpstreamFailure(status: 502), .closeClient]
        }
        return failUpstream(status: 502)
    }

    mutating func responseTimedOut() -> Actions {
        guard case .forwarding(let exchange) = state, !exchange.responseStarted else { return [] }
        return failUpstream(status: 504)
    }

    private mutating func failUpstream(status: Int) -> Actions {
        enterClosing() + [.logUpstreamFailure(status: status), .respondError(status: status, close: true)]
    }

    // MARK: Registry → client

    /// A response head from the registry. Informational (1xx) heads are not the response.
    mutating func responseHead(status: Int, upstreamKeepAlive: Bool, hasContentLength: Bool) -> Actions {
        guard case .forwarding(var exchange) = state, !exchange.responseStarted else { return [] }
        if (100..<200).contains(status) { return [] }
        exchange.responseStarted = true
        exchange.upstreamCloses = !upstreamKeepAlive
        // An HTTP/1.0 client cannot take a chunked body: without a length, closing ends the body.
        if exchange.http10 && !hasContentLength { exchange.closeAfterResponse = true }
        state = .forwarding(exchange)
        return Actions(.cancelResponseTimer, .writeResponseHead(close: !exchange.keepAlive || exchange.closeAfterResponse))
    }

    mutating func responseBody() -> Actions {
        guard case .forwarding(let exchange) = state, exchange.responseStarted else { return [] }
        return [.writeResponseBody]
    }

    mutating func responseEnd() -> Actions {
        guard case .forwarding(let exchange) = state, exchange.responseStarted else { return [] }
        // Answered before the request's body ended: what is left of it cannot be told from the
        // next request, so the connection cannot be reused.
        let close = !exchange.keepAlive || exchange.closeAfterResponse || !exchange.requestEnded
        var actions: Actions = [.logAllowed]
        if exchange.upstreamCloses {
            hasUpstream = false
            actions.append(.dropUpstream)
        }
        if close {
            state = .closing
            actions.append(.writeResponseEnd(close: true))
        } else {
            state = .idle
            actions += [.startHeaderTimer, .writeResponseEnd(close: false)]
        }
        if upstreamReadHeld && !close {
            upstreamReadHeld = false
            actions.append(.readUpstream)
        }
        return actions
    }

    /// True while the request of the exchange in progress has ended and only its response is
    /// awaited: a malformed request read behind it waits for that response.
    var awaitingResponse: Bool {
        if case .forwarding(let exchange) = state { return exchange.requestEnded }
        return false
    }

    /// The client sent bytes that are not HTTP/1.1 (the decoder stopped): answer 400 when no
    /// response has started, then close.
    mutating func protocolError(status: Int = 400) -> Actions {
        switch state {
        case .idle:
            return enterClosing() + [.respondError(status: status, close: true)]
        case .forwarding(let exchange) where !exchange.responseStarted:
            return enterClosing() + [.respondError(status: status, close: true)]
        case .forwarding, .refusing:
            // A response for this request is already on its way: only closing is left.
            return enterClosing() + [.closeClient]
        case .closing:
            return []
        }
    }

    // MARK: Quiescing

    /// The server drains: an idle connection closes now; a busy one answers with
    /// `Connection: close` (when its response has not started) and closes after the response.
    mutating func quiesce() -> Actions {
        quiescing = true
        switch state {
        case .idle: return enterClosing() + [.closeClient]
        case .forwarding(var exchange):
            exchange.keepAlive = false
            state = .forwarding(exchange)
            return []
        case .refusing, .closing: return []
        }
    }

    // MARK: Timers and the client going away

    mutating func headerTimedOut() -> Actions {
        guard case .idle = state else { return [] }
        return enterClosing() + [.closeClient]
    }

    mutating func idleTimedOut() -> Actions {
        enterClosing() + [.closeClient]
    }

    mutating func clientClosed() -> Actions {
        enterClosing()
    }

    /// Closing is terminal: timers stop, the registry connection goes, held reads are forgotten.
    private mutating func enterClosing() -> Actions {
        state = .closing
        hasUpstream = false
        clientReadHeld = false
        upstreamReadHeld = false
        return [.cancelHeaderTimer, .cancelResponseTimer, .dropUpstream]
    }

    // MARK: Backpressure

    /// The client side wants to read. Held while the registry side is connecting or cannot take more.
    mutating func clientReadRequested(upstreamWritable: Bool) -> Actions {
        if case .closing = state { return [] }
        if case .forwarding(let exchange) = state, exchange.connecting || !upstreamWritable {
            clientReadHeld = true
            return []
        }
        return [.readClient]
    }

    /// The registry side can take more again.
    mutating func upstreamBecameWritable() -> Actions {
        guard clientReadHeld else { return [] }
        if case .forwarding(let exchange) = state, exchange.connecting { return [] }
        clientReadHeld = false
        return [.readClient]
    }

    /// The registry side wants to read. Held while the client cannot take more.
    mutating func upstreamReadRequested(clientWritable: Bool) -> Actions {
        if !clientWritable {
            upstreamReadHeld = true
            return []
        }
        return [.readUpstream]
    }

    /// The client can take more again.
    mutating func clientBecameWritable() -> Actions {
        guard upstreamReadHeld else { return [] }
        upstreamReadHeld = false
        return [.readUpstream]
    }
}
