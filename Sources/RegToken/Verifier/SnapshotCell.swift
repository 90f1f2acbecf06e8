import Atomics

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One immutable object, read by many threads without locks and replaced by a writer. The
/// verifier keeps its keys and revocation set in one; a server can keep its own snapshots too.
///
/// Readers neither lock, allocate, nor touch the object's reference count (which would make every
/// reader on every core fight over one cache line). Instead each reader bumps a counter in its
/// own slot (64 slots on separate cache lines, chosen by thread) for the current epoch's parity,
/// reads the pointer, and drops the counter when done. A writer, serialised by a mutex, swaps the
/// pointer, flips the epoch and waits until the old parity's counters are all zero, twice, and
/// only then releases the old object. This is the two-phase scheme of user-space RCU; all operations on
/// the pointer, the epoch and the counters are sequentially consistent, which is what makes
/// "either the writer sees my counter, or I see the new pointer" hold.
public final class SnapshotCell<Value: AnyObject & Sendable>: @unchecked Sendable {
    private static var slotCount: Int { 64 }
    /// 16 Ints = 128 bytes between slots: no two slots share a cache line (or an adjacent-line prefetch pair).
    private static var slotStride: Int { 16 }

    private let pointer: UnsafeAtomic<UInt>
    private let epoch: UnsafeAtomic<Int>
    private let counters: UnsafeMutablePointer<UnsafeAtomic<Int>.Storage>
    private let writer = WriterLock()

    public init(_ value: Value) {
        pointer = .create(UInt(bitPattern: Unmanaged.passRetained(value).toOpaque()))
        epoch = .create(0)
        let n = Self.slotCount * Self.slotStride
        counters = .allocate(capacity: n)
        counters.initialize(repeating: UnsafeAtomic<Int>.Storage(0), count: n)
    }

    deinit {
        if let p = UnsafeRawPointer(bitPattern: pointer.load(ordering: .sequentiallyConsistent)) {
            Unmanaged<Value>.fromOpaque(p).release()
        }
        pointer.destroy()
        epoch.destroy()
        counters.deinitialize(count: Self.slotCount * Self.slotStride)
        counters.deallocate()
    }

    private func counter(slot: Int, parity: Int) -> UnsafeAtomic<Int> {
        UnsafeAtomic(at: counters + (slot * Self.slotStride + parity))
    }

    private static func currentSlot() -> Int {
        let id = UInt(bitPattern: Int(bitPattern: UInt(pthread_self())))
        return Int(truncatingIfNeeded: (id &* 0x9E37_79B9_7F4A_7C15) >> 58)
    }

    /// Runs `body` with the current value. The value stays alive until `body` returns.
    /// - Warning: do not let the reference escape `body`.
    @inline(__always)
    public func read<R, E: Error>(_ body: (Value) throws(E) -> R) throws(E) -> R {
        let slot = Self.currentSlot()
        let parity = epoch.load(ordering: .sequentiallyConsistent) & 1
        let c = counter(slot: slot, parity: parity)
        c.wrappingIncrement(ordering: .sequentiallyConsistent)
        defer { c.wrappingDecrement(ordering: .sequentiallyConsistent) }
        let bits = pointer.load(ordering: .sequentiallyConsistent)
        // Never nil: the cell always holds a value.
        let unmanaged = Unmanaged<Value>.fromOpaque(UnsafeRawPointer(bitPattern: bits).unsafelyUnwrapped)
        let result: Result<R, E> = unmanaged._withUnsafeGuaranteedRef { value in
            Result { () throws(E) -> R in try body(value) }
        }
        return try result.get()
    }

    /// Replaces the value.
    public func replace(_ value: Value) {
        update { _ in (value, ()) }
    }

    /// Replaces the value with `transform(current)`, atomically with respect to other writers.
    /// Returns what `transform` returned beside the new value. Waits for readers of the old value.
    public func update<R, E: Error>(_ transform: (Value) throws(E) -> (Value, R)) throws(E) -> R {
        let outcome: Result<R, E> = writer.withLock {
            let oldBits = pointer.load(ordering: .sequentiallyConsistent)
            let old = Unmanaged<Value>.fromOpaque(UnsafeRawPointer(bitPattern: oldBits).unsafelyUnwrapped)
            let attempt: Result<(Value, R), E> = old._withUnsafeGuaranteedRef { v in
                Result { () throws(E) -> (Value, R) in try transform(v) }
            }
            let produced: (Value, R)
            switch attempt {
            case .failure(let error): return .failure(error)
            case .success(let value): produced = value
            }
            let newBits = UInt(bitPattern: Unmanaged.passRetained(produced.0).toOpaque())
            pointer.store(newBits, ordering: .sequentiallyConsistent)
            // Two flips, as user-space RCU's synchronize does: after the first wait no reader of
            // the old parity remains; the second catches readers that read the epoch just before
            // the first flip but counted themselves after it, so that the next writer can rely on
            // every reader being counted under the parity it waits for.
            for _ in 0..<2 {
                let oldParity = epoch.load(ordering: .sequentiallyConsistent) & 1
                epoch.store(oldParity == 0 ? 1 : 0, ordering: .sequentiallyConsistent)
                for slot in 0..<Self.slotCount {
                    let c = counter(slot: slot, parity: oldParity)
                    var spins = 0
                    while c.load(ordering: .sequentiallyConsistent) != 0 {
                        spins += 1
                        if spins < 64 { sched_yield() } else { usleep(50) }
                    }
                }
            }
            old.release()
            return .success(produced.1)
        }
        return try outcome.get()
    }

    /// A strong reference to the current value (for reading outside the hot path).
    public func load() -> Value {
        writer.withLock {
            let bits = pointer.load(ordering: .sequentiallyConsistent)
            return Unmanaged<Value>.fromOpaque(UnsafeRawPointer(bitPattern: bits).unsafelyUnwrapped).takeUnretainedValue()
        }
    }
}
