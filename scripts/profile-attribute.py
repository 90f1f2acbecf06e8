#!/usr/bin/env python3
"""Where a recording of `regtoken proxy` (perf record -g) spent its samples.

    scripts/profile-attribute.py PERF_DATA [REQUESTS]

Each sample goes to the innermost user-space frame of its stack that names a part of the
request path (the first pattern below that matches, from the leaf up; kernel frames are not
matched), and is counted as kernel time when its leaf is in the kernel. System calls are their
own parts, by their libc wrappers: a write to a loopback socket includes the receiving side's
TCP work and the wake-up of its reader. A write (`write` or `writev`) is the request to the
registry when the registry side's flush is on its stack, the response to the client when the end
of a read from the registry is (a small answer goes out as one buffer, so the wrapper alone does
not tell them apart).
With REQUESTS, the number of requests served while recording, it also prints the samples a
request, in user space and in the kernel: comparable between two servers recorded the same way
(scripts/bench-proxy.sh --profile --floor records the proxy and the byte-level cost model).
scripts/bench-proxy.sh --profile runs this after recording.
"""
import collections
import re
import subprocess
import sys

PARTS = [
    ("syscall write", r"^__GI___libc_write$|^__libc_write$|^write$|^__GI___writev$|^writev$"),
    ("syscall read (both sides)", r"^read$|^__GI___libc_read$|^__libc_read$"),
    ("epoll, clock and other syscalls", r"epoll_wait|^__GI_epoll|^syscall$|clock_gettime"),
    ("access log", r"AccessLog"),
    ("metrics", r"Prometheus|ProxyMetrics"),
    ("decision: token verification", r"8RegToken0B8Verifier|CRegTokenFastPath|^EVP_|^HMAC|^SHA256"),
    ("decision: credentials (Basic, base64)", r"CredentialsO5parse"),
    ("decision: registry path", r"RegTokenAccess15RegistryRequestV"),
    ("decision: the rest", r"RegTokenAccess0C6Policy|SnapshotCell|ProxyStateC6decide"),
    ("forwarding rules (framing)", r"RequestHeadV7framing|checkNoFormParameters"),
    ("forwarded request headers", r"ForwardedHeaders"),
    ("client side codec: request head read", r"HTTP1RequestHeadReader|HTTP1HeadScanner|HTTP1ServerCodecC11requestHead|HTTP1ServerCodecC8headRead"),
    ("client side codec: response written", r"HTTP1ServerCodecC(5write|6encode)"),
    ("registry side codec: request written", r"HTTP1ClientCodecC(5write|6encode)"),
    ("registry side codec: response read", r"HTTP1ClientCodec|HTTP1ResponseHead"),
    ("handler: response head rewritten", r"HandlerC12upstreamRead"),
    ("handler: request head", r"HandlerC11requestHead"),
    ("handler and state machine: the rest", r"RegTokenProxyCore"),
    ("SwiftNIO: reading", r"readFrom|RecvBuffer"),
    ("SwiftNIO: writing and flushing", r"PendingWrites|flush|invokeWrite|_write0|writeTo"),
    ("SwiftNIO: event loop and pipeline", r"NIOPosix|NIOCore"),
]
COMPILED = [(name, re.compile(pattern)) for name, pattern in PARTS]
# Which write a "syscall write" is, by the nearest of these on its stack above it: the end of a
# read from the registry flushes the client's side, the end of a read from the client (the
# proxy's handler's, `0C7Handler`) the registry's.
WRITES = [
    ("syscall write (response to the client)", re.compile(r"UpstreamHandlerC19channelReadComplete|upstreamReadComplete|endUpstreamBatch")),
    ("syscall write (request to the registry)", re.compile(r"Core0C7HandlerC19channelReadComplete|UpstreamHandlerC5flush|flushPending")),
]


def main() -> int:
    if len(sys.argv) not in (2, 3):
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 64
    requests = float(sys.argv[2]) if len(sys.argv) == 3 else 0.0
    script = subprocess.run(["perf", "script", "-i", sys.argv[1], "-F", "ip,sym"],
                            capture_output=True, text=True, check=True).stdout
    counts: collections.Counter[str] = collections.Counter()
    kernel: collections.Counter[str] = collections.Counter()
    total = 0

    def attribute(stack: list[tuple[str, bool]]) -> None:
        nonlocal total
        if not stack:
            return
        total += 1
        in_kernel = stack[0][1]
        part = "other"
        for i, (symbol, kernel_frame) in enumerate(stack):
            if kernel_frame:
                continue
            hit = next((name for name, pattern in COMPILED if pattern.search(symbol)), None)
            if hit == "syscall write":
                hit = next((name for caller, _ in stack[i + 1:] for name, pattern in WRITES if pattern.search(caller)),
                           "syscall write (other)")
            if hit:
                part = hit
                break
        counts[part] += 1
        if in_kernel:
            kernel[part] += 1

    stack: list[tuple[str, bool]] = []
    for line in script.splitlines():
        fields = line.split(None, 1)
        if not fields:
            attribute(stack)
            stack = []
            continue
        address = fields[0]
        stack.append((fields[1] if len(fields) > 1 else "?", address.startswith("ffffffff")))
    attribute(stack)
    if total == 0:
        print("profile-attribute.py: no samples", file=sys.stderr)
        return 1
    print(f"{total} samples; % of all samples")
    print(f"{'part of the request path':46s} {'all':>6s} {'kernel':>7s} {'user':>6s}")
    for name, n in counts.most_common():
        print(f"{name:46s} {100 * n / total:6.1f} {100 * kernel[name] / total:7.1f} {100 * (n - kernel[name]) / total:6.1f}")
    user = total - sum(kernel.values())
    if user == total:
        print("profile-attribute.py: no kernel samples (kernel.perf_event_paranoid >= 2?): system calls' time is missing", file=sys.stderr)
    print(f"{'total':46s} {100.0:6.1f} {100 * (total - user) / total:7.1f} {100 * user / total:6.1f}")
    if requests > 0:
        print(f"samples a request: {total / requests:.4f} ({(total - user) / requests:.4f} in the kernel, "
              f"{user / requests:.4f} in user space; {requests:.0f} requests while recording)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
