import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One immutable object, read by many threads and replaced by a writer. The verifier keeps its
/// keys and revocation set in one; a server can keep its own snapshots too.
///
/// Plain Swift and `Synchronization.Atomic` (a "left-right" pair of slots with striped reader
/// counts): readers take no lock, never wait, allocate nothing and do not touch the object's
/// reference count (which every reader on every core would fight over). The cell holds the
/// object in one of two slots; a reader adds one to its stripe's count for the slot in force,
/// checks that the slot is still in force (else it undoes the count and takes the other), reads
/// the object, and subtracts the one when `body` returns. A writer, serialised by a mutex, puts
/// the new object in the other slot, makes it the one in force, waits until every stripe's
/// count for the old slot is zero, and only then releases the old object.
///
/// Why stripes: a count shared by every reader would be one cache line written by every core on
/// every read. Each thread counts on a line picked by a hash of its id (16 lines of 128 bytes);
/// two threads on one line are still correct, only slower. Why not the C hazard records this
/// replaced (per-thread records with plain stores and membarrier(2) on the writer's side): they
/// bought less than 5 % of a verification (BENCHMARKS.md, "C only where it pays").
///
/// - Warning: a thread must not end (`pthread_exit`) or `fork` inside `body`: its count would
///   stay, and writers of this cell would wait for it forever. Do not replace a cell inside a
///   read of that same cell (the writer would wait for this very read). Reading or replacing
///   other cells, reading this one again (nested reads), or waiting for other threads that read,
///   is fine.
package final class SnapshotCell<Value: AnyObject & Sendable>: @unchecked Sendable {
    /// Reader stripes (cache lines of counts). A power of two.
    package static var stripes: Int { 16 }
    /// Bytes per line: two cache lines, so that the adjacent-line prefetcher does not pair them.
    package static var line: Int { 128 }

    /// One allocation of `1 + stripes` lines of `Atomic<Int>`, made in init and freed in deinit:
    /// line 0 holds the index of the slot in force (0 or 1) and the two slots (the objects'
    /// addresses, each retained once while in a slot, 0 when empty); line `1 + s` holds stripe
    /// `s`'s count of readers inside a read of slot 0, and of slot 1.
    package let words: UnsafeMutableRawPointer
    private let writer = WriterLock()

    package init(_ value: Value) {
        let count = (1 + Self.stripes) * Self.line / MemoryLayout<Atomic<Int>>.stride
        words = .allocate(byteCount: (1 + Self.stripes) * Self.line, alignment: Self.line)
        let atomics = words.bindMemory(to: Atomic<Int>.self, capacity: count)
        for k in 0..<count { (atomics + k).initialize(to: Atomic(0)) }
        slot(0).pointee.store(Int(bitPattern: Unmanaged.passRetained(value).toOpaque()), ordering: .relaxed)
    }

    deinit {
        // No read can be running: a reader holds the cell.
        for i in 0..<2 {
            let bits = slot(i).pointee.load(ordering: .relaxed)
            if let p = UnsafeRawPointer(bitPattern: bits) { Unmanaged<Value>.fromOpaque(p).release() }
        }
        let count = (1 + Self.stripes) * Self.line / MemoryLayout<Atomic<Int>>.stride
        words.assumingMemoryBound(to: Atomic<Int>.self).deinitialize(count: count)
        words.deallocate()
    }

    @inlinable @inline(__always)
    var inForce: UnsafeMutablePointer<Atomic<Int>> { words.assumingMemoryBound(to: Atomic<Int>.self) }

    /// Slot `i`'s object address (0 or 1).
    @inlinable @inline(__always)
    func slot(_ i: Int) -> UnsafeMutablePointer<Atomic<Int>> {
        words.assumingMemoryBound(to: Atomic<Int>.self) + 1 + i
    }

    /// The counts (slot 0, slot 1) of stripe `s`.
    @inlinable @inline(__always)
    func counts(_ s: Int) -> UnsafeMutablePointer<Atomic<Int>> {
        (words + Self.line * (1 + s)).assumingMemoryBound(to: Atomic<Int>.self)
    }

    /// This thread's stripe: a multiplicative hash of its id, whose top bits depend on all of it
    /// (thread ids are addresses some megabytes apart).
    @inlinable @inline(__always)
    static func stripe() -> Int {
        let id = UInt64(pthread_self())
        return Int(truncatingIfNeeded: (id &* 0x9E37_79B9_7F4A_7C15) >> 60) & (stripes - 1)
    }

    /// Runs `body` with the current value. The value stays alive until `body` returns.
    /// Inlinable, so that callers in other modules (a server's own snapshots) get it specialised.
    /// - Warning: do not let the reference escape `body` (see the type's warning).
    @inlinable @inline(__always)
    package func read<R, E: Error>(_ body: (Value) throws(E) -> R) throws(E) -> R {
        let result: Result<R, E> = withValue { value in Result { () throws(E) -> R in try body(value) } }
        return try result.get()
    }

    /// ``read(_:)`` for a `body` that does not throw, with no `Result` around what it returns.
    /// For callers in other modules: there the compiler leaves both forms unspecialised (a
    /// `package` generic), and the typed-throws form then builds `Result<R, E>`'s metadata on
    /// every call (a locked cache lookup in the runtime) where this one needs none.
    @inlinable @inline(__always)
    package func withValue<R>(_ body: (Value) -> R) -> R {
        let mine = counts(Self.stripe())
        // Sequentially consistent on both sides (a Dekker pair): either the writer's scan sees
        // this count, or this load sees the writer's new slot and the read moves to it.
        var i = inForce.pointee.load(ordering: .relaxed)
        while true {
            mine[i].wrappingAdd(1, ordering: .sequentiallyConsistent)
            let again = inForce.pointee.load(ordering: .sequentiallyConsistent)
            if again == i { break }
            mine[i].wrappingSubtract(1, ordering: .releasing)
            i = again
        }
        defer { mine[i].wrappingSubtract(1, ordering: .releasing) }
        // After the load above (at least acquiring): the writer filled the slot before it made
        // the slot the one in force. Never 0 then.
        let bits = slot(i).pointee.load(ordering: .relaxed)
        let unmanaged = Unmanaged<Value>.fromOpaque(UnsafeRawPointer(bitPattern: bits).unsafelyUnwrapped)
        return unmanaged._withUnsafeGuaranteedRef { value in body(value) }
    }

    /// Replaces the value.
    package func replace(_ value: Value) {
        update { _ in (value, ()) }
    }

    /// Replaces the value with `transform(current)`, atomically with respect to other writers.
    /// Returns what `transform` returned beside the new value. Waits for readers of the old value
    /// (only those: not for readers of other cells, nor for reads that begin meanwhile).
    package func update<R, E: Error>(_ transform: (Value) throws(E) -> (Value, R)) throws(E) -> R {
        let outcome: Result<R, E> = writer.withLock {
            // Only writers change the slot in force, under this lock.
            let i = inForce.pointee.load(ordering: .relaxed)
            let old = Unmanaged<Value>.fromOpaque(UnsafeRawPointer(bitPattern: slot(i).pointee.load(ordering: .relaxed)).unsafelyUnwrapped)
            let attempt: Result<(Value, R), E> = old._withUnsafeGuaranteedRef { v in
                Result { () throws(E) -> (Value, R) in try transform(v) }
            }
            let produced: (Value, R)
            switch attempt {
            case .failure(let error): return .failure(error)
            case .success(let value): produced = value
            }
            // The same object (an unchanged reload): nothing to publish, no reader to wait for.
            if produced.0 === old.takeUnretainedValue() { return .success(produced.1) }
            // The other slot is empty: its last readers were waited for by the previous write
            // (a reader that still counts on it holds a stale index and will not read it).
            let j = 1 - i
            slot(j).pointee.store(Int(bitPattern: Unmanaged.passRetained(produced.0).toOpaque()), ordering: .relaxed)
            inForce.pointee.store(j, ordering: .sequentiallyConsistent)
            waitForReaders(of: i)
            slot(i).pointee.store(0, ordering: .relaxed)
            old.release()
            return .success(produced.1)
        }
        return try outcome.get()
    }

    /// Returns once no read of slot `i` is running: each stripe's count read as zero after slot
    /// `i` stopped being in force (a reader that counts on it later sees the change and leaves).
    private func waitForReaders(of i: Int) {
        for s in 0..<Self.stripes {
            var spins = 0
            while counts(s)[i].load(ordering: .sequentiallyConsistent) != 0 {
                spins += 1
                if spins < 64 { sched_yield() } else { usleep(50) }
            }
        }
    }

    /// A strong reference to the current value (for reading outside the hot path).
    package func load() -> Value {
        read { $0 }
    }
}
