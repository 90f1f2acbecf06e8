import Foundation

/// A long-lived background process (the proxy, a stand-in server), started with posix_spawn and
/// reaped with waitpid. Not Foundation's Process: that one learns a child ended when a socket the
/// child inherited closes, so any other process that inherits the socket too (every child
/// started meanwhile, tests run in parallel) would make it wait for that process as well. The
/// child closes every inherited descriptor but stdin, stdout and stderr before it execs.
final class Spawned {
    let pid: pid_t
    private var reaped = false

    init(_ argv: [String], environment: [String: String] = [:], log: String) throws {
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        let script = "for fd in $(ls /proc/$$/fd); do [ \"$fd\" -gt 2 ] && eval \"exec $fd>&-\" 2>/dev/null; done; exec \"$@\""
        let args = ["/bin/bash", "-c", script, "bash"] + argv
        var cArgs: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
        var cEnv: [UnsafeMutablePointer<CChar>?] = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for p in cArgs { free(p) }
            for p in cEnv { free(p) }
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var child: pid_t = 0
        let rc = posix_spawn(&child, "/bin/bash", &actions, nil, &cArgs, &cEnv)
        guard rc == 0 else { throw HarnessError("posix_spawn \(argv.first ?? ""): \(String(cString: strerror(rc)))") }
        pid = child
    }

    /// The exit status once the child ended: its exit code, or 128 + the signal that killed it.
    private(set) var exitStatus: Int32?

    var isRunning: Bool {
        guard !reaped else { return false }
        var status: Int32 = 0
        let r = waitpid(pid, &status, WNOHANG)
        if r == pid {
            reaped = true
            exitStatus = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        }
        return r == 0
    }

    func signal(_ sig: Int32) { kill(pid, sig) }

    /// SIGTERM, then SIGKILL after 5 s; reaps the child.
    func stop() {
        guard !reaped else { return }
        kill(pid, SIGTERM)
        let deadline = Date().addingTimeInterval(5)
        while isRunning && Date() < deadline { usleep(20_000) }
        if isRunning {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            reaped = true
        }
    }

    deinit { stop() }
}
