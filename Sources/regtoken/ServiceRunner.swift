import Logging
import ServiceLifecycle
import Synchronization
import UnixSignals

/// Runs a server's service group under the signals every regtoken server answers: the first
/// SIGTERM or SIGINT shuts the group down gracefully (servers drain), a second one cancels it at
/// once; SIGHUP calls `onHangup` (reloads), when given. The signals are trapped with
/// ``trapSignals(hangup:)`` before the server binds.
enum ServiceRunner {
    enum Outcome {
        /// Stopped by a graceful shutdown, or every service returned.
        case stopped
        /// Cancelled by a second signal: requests in flight were cut.
        case cut
        case failed(any Error)
    }

    /// Takes over SIGTERM and SIGINT (and SIGHUP when `hangup`), before a server binds its
    /// first socket: a signal that comes between the bind and ``run(_:signals:logger:onHangup:)``
    /// waits for it and is answered then (a graceful shutdown requested before the group runs
    /// starts and drains it at once), where the default action would have killed the process
    /// with connections already accepted.
    static func trapSignals(hangup: Bool) async -> UnixSignalsSequence {
        await UnixSignalsSequence(trapping: hangup ? [.sigterm, .sigint, .sighup] : [.sigterm, .sigint])
    }

    static func run(_ group: ServiceGroup, signals: UnixSignalsSequence, logger: Logger,
                    onHangup: (@Sendable () async -> Void)? = nil) async -> Outcome {
        let running = Task { try await group.run() }
        let cut = Mutex(false)
        let watcher = Task {
            var stopping = false
            for await sig in signals {
                if sig == .sighup {
                    await onHangup?()
                } else if !stopping {
                    stopping = true
                    logger.info("\(sig): shutting down gracefully (a second signal stops at once)")
                    await group.triggerGracefulShutdown()
                } else {
                    logger.warning("\(sig) again: stopping at once")
                    cut.withLock { $0 = true }
                    running.cancel()
                }
            }
        }
        let result = await running.result
        watcher.cancel()
        if cut.withLock({ $0 }) { return .cut }
        if case .failure(let error) = result { return .failed(error) }
        return .stopped
    }
}
