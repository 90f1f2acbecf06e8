import FoundationEssentials
import RegToken

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The state directory of the command line (`--home`, `REGTOKEN_HOME`, or `~/.regtoken`):
///
/// ```
/// <home>/               0700
///   config.json         account, region, registry host per region      0600
///   keys/               the key ring (see Keys/README.md)               0700
///   ledger.sqlite       issued tokens and revocations (SQLite, WAL)     0600
///   revocations.jws     the signed revocation list, for verifiers       0644
///   lock                held (flock) by the regtoken process working here
/// ```
///
/// Opening a home takes its lock for the life of the object, so regtoken processes on one home
/// run one at a time (SQLite transactions would keep the ledger whole anyway; the lock also keeps
/// the ledger, the keys and the revocation file in step). Every open also deletes expired tokens
/// and brings the revocation file in line with the ledger: expired tokens disappear by themselves,
/// and a command killed between its ledger commit and its file write is completed by the next run.
public final class Home {
    public let path: String
    public private(set) var config: HomeConfig
    public let ledger: Ledger
    /// Held for the life of the object, unless the home is shared (``init(path:initialAlgorithm:now:shared:)``).
    private var lock: FileLock?
    private let lockPath: String

    public var keysDirectory: String { "\(path)/keys" }
    public var revocationsPath: String { "\(path)/revocations.jws" }
    var configPath: String { "\(path)/config.json" }

    /// `explicit`, else `$REGTOKEN_HOME`, else `~/.regtoken`.
    public static func resolvePath(explicit: String?, environment: [String: String]) -> String {
        if let explicit, !explicit.isEmpty { return explicit }
        if let env = environment["REGTOKEN_HOME"], !env.isEmpty { return env }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? "/root"
        return "\(home)/.regtoken"
    }

    /// Opens the state directory at `path`, creating it (0700, with a fresh `initialAlgorithm`
    /// signing key) on first use.
    /// - Parameter shared: false (the command line): the lock is held for the life of the object,
    ///   so regtoken processes on one home take turns. True (`regtoken serve`, which runs for
    ///   days): the lock is held only while opening and during each change that writes the
    ///   revocation list or the keys (``withLock(_:)``), so the operator's commands on the same
    ///   home run beside the service.
    public init(path: String, initialAlgorithm: Algorithm = .es256, now: Int64, shared: Bool = false) throws(LedgerError) {
        self.path = path
        self.lockPath = path + "/lock"
        do {
            try AtomicFile.makeDirectory(path, mode: 0o700)
        } catch {
            throw LedgerError(.storage, "cannot create state directory: \(error)")
        }
        // The state directory decides who gets tokens: it must be the running user's (or root's),
        // a real directory, and closed to everyone else; so must keys/ and the ledger.
        do { try AtomicFile.checkDirectory(path, private: true) } catch {
            throw LedgerError(.storage, "cannot use state directory: \(error)")
        }
        lock = try FileLock(path: "\(path)/lock")
        if access("\(path)/keys", F_OK) == 0 {
            do { try AtomicFile.checkDirectory("\(path)/keys", private: true) } catch {
                throw LedgerError(.storage, "cannot use key directory: \(error)")
            }
        }
        try Self.checkLedgerFiles(path)
        config = try HomeConfig.load("\(path)/config.json")
        let hasKeys = ((try? AtomicFile.list("\(path)/keys")) ?? []).contains { $0.hasSuffix(".pem") || $0.hasSuffix(".hs256") }
        if !hasKeys {
            // A home that has issued tokens and lost its keys must not get a new key silently:
            // every token it issued would stop verifying. Say what is missing instead.
            if access("\(path)/ledger.sqlite", F_OK) == 0 {
                throw LedgerError(.storage, "\(path)/keys holds no signing key, but this home has a ledger of issued tokens: restore keys/ from a backup (a new key would make every issued token fail), or move the home aside to start over")
            }
            do {
                let key = try SigningKey.generate(initialAlgorithm)
                try KeyRing.save(key, directory: "\(path)/keys")
                try KeyRing.activate(keyID: key.id, directory: "\(path)/keys")
            } catch {
                throw LedgerError(.storage, "cannot create the first signing key: \(error.reason)")
            }
        }
        if access("\(path)/ledger.sqlite", F_OK) != 0 { try Self.repairInterruptedFirstKey(directory: "\(path)/keys") }
        ledger = try Ledger(path: "\(path)/ledger.sqlite")
        for suffix in ["", "-wal", "-shm"] { _ = chmod("\(path)/ledger.sqlite\(suffix)", 0o600) }
        try ledger.purgeExpired(now: now)
        // Without an active key (the operator removed `keys/active`) the list cannot be re-signed;
        // the commands that fix that (`keys list`, `keys activate`) must still run.
        if try keyRing().activeKey != nil { try syncRevocations(now: now) }
        if shared {
            lock?.unlock()
            lock = nil
        }
    }

    /// The ledger's files (SQLite opens them itself) must be the running user's regular files.
    static func checkLedgerFiles(_ home: String) throws(LedgerError) {
        for suffix in ["", "-wal", "-shm"] {
            let file = "\(home)/ledger.sqlite\(suffix)"
            var st = stat()
            guard lstat(file, &st) == 0 else { continue }
            guard (st.st_mode & S_IFMT) == S_IFREG else {
                throw LedgerError(.storage, "\(file) is not a regular file (a symlink, FIFO or device); move it aside")
            }
            let me = geteuid()
            if st.st_uid != me && st.st_uid != 0 {
                throw LedgerError(.storage, "refusing \(file): owned by uid \(st.st_uid), not by the user running regtoken (uid \(me)); run: chown \(me) \(file)")
            }
        }
    }

    /// Releases the lock (also released when the object goes away or the process dies).
    public func close() {
        lock?.unlock()
        lock = nil
    }

    /// Runs `body` holding the home's lock: at once when the lock is held for the object's life,
    /// else taking it for the call (a shared home). Changes to the revocation list and the keys
    /// go through this.
    public func withLock<T>(_ body: () throws(LedgerError) -> T) throws(LedgerError) -> T {
        if lock != nil { return try body() }
        let held = try FileLock(path: lockPath)
        defer { held.unlock() }
        // Another process may have changed the keys meanwhile.
        cachedRing = nil
        return try body()
    }

    // MARK: Config

    public func updateConfig(_ change: (inout HomeConfig) -> Void) throws(LedgerError) {
        var c = config
        change(&c)
        try c.save(configPath)
        config = c
    }

    // MARK: Keys

    private var cachedRing: KeyRing?

    /// The key ring in `keys/`.
    public func keyRing() throws(LedgerError) -> KeyRing {
        if let cachedRing { return cachedRing }
        do {
            let ring = try KeyRing.load(directory: keysDirectory)
            cachedRing = ring
            return ring
        } catch {
            throw LedgerError(.storage, "cannot load keys: \(error.reason)")
        }
    }

    /// A first run killed between writing its key and naming it active leaves a ring with one
    /// signing key, no `active` file and no ledger yet (the ledger is created after the key):
    /// finish that run's work. Anywhere else a missing `active` file is the operator's doing, and
    /// which key should sign is the operator's choice, so nothing is guessed (the error that
    /// follows names `regtoken keys activate`).
    private static func repairInterruptedFirstKey(directory: String) throws(LedgerError) {
        let ring: KeyRing
        do { ring = try KeyRing.load(directory: directory) } catch {
            throw LedgerError(.storage, "cannot load keys: \(error.reason)")
        }
        guard ring.activeKeyID == nil else { return }
        let signers = ring.keys.filter(\.canSign)
        guard signers.count == 1 else { return }
        do { try KeyRing.activate(keyID: signers[0].id, directory: directory) } catch {
            throw LedgerError(.storage, "cannot activate the key: \(error.reason)")
        }
    }

    /// Generates a key; activates it when asked (or when no key is active).
    public func generateKey(_ algorithm: Algorithm, activate: Bool) throws(LedgerError) -> SigningKey {
        let ring = try keyRing()
        do {
            let key = try SigningKey.generate(algorithm)
            try KeyRing.save(key, directory: keysDirectory)
            if activate || ring.activeKeyID == nil { try KeyRing.activate(keyID: key.id, directory: keysDirectory) }
            cachedRing = nil
            return key
        } catch {
            throw LedgerError(.storage, "cannot create the key: \(error.reason)")
        }
    }

    public func activateKey(_ id: String) throws(LedgerError) {
        let ring = try keyRing()
        guard let key = ring.key(id: id) else {
            throw LedgerError(.notFound, "no key '\(id)' (see regtoken keys list)")
        }
        guard key.canSign else { throw LedgerError(.invalidInput, "key '\(id)' is a public key: it cannot sign") }
        do { try KeyRing.activate(keyID: id, directory: keysDirectory) } catch {
            throw LedgerError(.storage, "cannot activate the key: \(error.reason)")
        }
        cachedRing = nil
    }

    /// Retires a key: moves its file to `keys/retired/`, so every token it signed stops verifying,
    /// and forgets those tokens. The active key cannot be retired.
    /// - Returns: the number of tokens forgotten.
    public func retireKey(_ id: String, now: Int64) throws(LedgerError) -> Int {
        let ring = try keyRing()
        guard let key = ring.key(id: id) else { throw LedgerError(.notFound, "no key '\(id)' (see regtoken keys list)") }
        guard ring.activeKeyID != id else {
            throw LedgerError(.invalidInput, "key '\(id)' is the active signing key; activate another first (regtoken keys generate --activate)")
        }
        let name: String
        switch key.algorithm {
        case .hs256: name = "\(id).hs256"
        case .es256: name = key.canSign ? "\(id).pem" : "\(id).pub.pem"
        }
        do {
            try AtomicFile.makeDirectory("\(keysDirectory)/retired", mode: 0o700)
        } catch {
            throw LedgerError(.storage, "cannot create \(keysDirectory)/retired: \(error)")
        }
        guard rename("\(keysDirectory)/\(name)", "\(keysDirectory)/retired/\(name)") == 0 else {
            throw LedgerError(.storage, "cannot move \(keysDirectory)/\(name) to retired/: \(String(cString: strerror(errno)))")
        }
        cachedRing = nil
        let forgotten = try ledger.forgetKey(id, now: now)
        try syncRevocations(now: now)
        return forgotten
    }

    // MARK: Tokens

    /// Refuses a token that could never work, before it is made: for an account registered in
    /// this home (`accounts add`), a namespace it does not own; for any other account, a name that
    /// is not a namespace (its only namespace is its name, as the proxy reads it without a
    /// namespaces file), such as `Acme` or `ops@acme`.
    public func checkTokenCanWork(account: String, namespaces: [String]?, repositories: [RepositoryRule]? = nil, now: Int64) throws(LedgerError) {
        let owned: [String]
        if let known = try ledger.account(named: account, now: now) {
            owned = known.namespaces
            if let outside = namespaces?.first(where: { !known.namespaces.contains($0) }) {
                throw LedgerError(.invalidInput, "account \(account) does not own namespace \(outside) (it owns \(known.namespaces.joined(separator: ", "))): the proxy would refuse every request of the token there")
            }
        } else if !TokenClaims.isNameComponent(account) {
            throw LedgerError(.invalidInput, "account '\(account)' is not a namespace name (lowercase letters, digits, separators), so its tokens could never pull or push: use a lowercase account name, which is also its namespace (as regtoken accounts add requires)")
        } else {
            owned = [account]
        }
        // A rule outside the account's namespaces could never match a repository it may use.
        if let outside = repositories?.first(where: { !owned.contains($0.namespace) }) {
            throw LedgerError(.invalidInput, "repository rule '\(outside.description.prefix(80))' is outside account \(account)'s namespaces (\(owned.joined(separator: ", ")))")
        }
    }

    /// Issues a token and records it (its claims and key id; never its value).
    /// - Parameter lifetime: seconds until expiry, or `nil` for a non-expiring token.
    public func issueToken(account: String, region: String, scope: Scope, description: String,
                           lifetime: Int64?, namespaces: [String]?, repositories: [RepositoryRule]? = nil,
                           allowFrom: [AddressRange]? = nil, now: Int64) throws(LedgerError) -> IssuedToken {
        let ring = try keyRing()
        let claims = TokenClaims(account: account, region: region, scope: scope, issuedAt: now,
                                 expiresAt: lifetime.map { now + $0 }, namespaces: namespaces, repositories: repositories, allowFrom: allowFrom)
        let token: String
        let issuer: TokenIssuer
        do {
            issuer = try TokenIssuer(keyRing: ring)
            token = try issuer.issue(claims)
        } catch {
            throw LedgerError(error.code == .invalidClaims ? .invalidInput : .storage, error.reason)
        }
        let record = TokenRecord(id: claims.id, account: account, region: region, scope: scope, description: description,
                                 createdAt: now, expiresAt: claims.expiresAt, keyID: issuer.key.id, namespaces: namespaces,
                                 repositories: repositories, allowFrom: allowFrom)
        try ledger.add(record)
        return IssuedToken(record: record, value: token)
    }

    /// The value of a recorded token: its claims signed again with the key that signed them
    /// (HS256 gives the same bytes; ES256 a fresh signature, with the same id, rights, expiry and
    /// revocation). A token whose key was retired no longer exists.
    public func tokenValue(_ record: TokenRecord) throws(LedgerError) -> IssuedToken {
        let ring = try keyRing()
        guard let key = ring.key(id: record.keyID), key.canSign else {
            throw LedgerError(.notFound, "token \(record.id) was signed by key '\(record.keyID)', which is retired or not a signing key here; the token no longer exists")
        }
        do {
            return IssuedToken(record: record, value: try TokenIssuer(key: key).issue(record.claims))
        } catch {
            throw LedgerError(.storage, "cannot sign token \(record.id) again: \(error.reason)")
        }
    }

    /// Removes tokens (all or none), revoking those not yet expired, and rewrites the revocation
    /// list before returning.
    public func removeTokens(_ ids: [UUIDBytes], account: String, region: String, now: Int64) throws(LedgerError) -> [TokenRecord] {
        try withLock { () throws(LedgerError) -> [TokenRecord] in
            // Refuse before touching the ledger when the list could not be re-signed afterwards.
            guard try keyRing().activeKey != nil else {
                throw Self.noSigningKey
            }
            let removed = try ledger.remove(ids: ids, account: account, region: region, now: now)
            try syncRevocations(now: now)
            return removed
        }
    }

    // MARK: Revocations

    /// The signed revocation list on disk, verified with the key ring.
    public func revocationFile() throws(LedgerError) -> RevocationList {
        let ring = try keyRing()
        do {
            return try RevocationList.load(path: revocationsPath, keys: ring)
        } catch {
            throw LedgerError(.storage, error.reason)
        }
    }

    /// Signs the list again as a new version made at `now` (same entries), when the one on disk
    /// is older than `olderThan` seconds (always when nil). Verifiers with a maximum age
    /// (`regtoken proxy --revocations-max-age`) bound how old a list's signature may be: run
    /// this (`regtoken revocations refresh`) more often than that.
    /// - Returns: true when a new list was written.
    @discardableResult
    public func refreshRevocations(now: Int64, olderThan: Int64? = nil) throws(LedgerError) -> Bool {
        guard try keyRing().activeKey != nil else { throw Self.noSigningKey }
        if let olderThan, let current = try? revocationFile(), now - current.issuedAt < olderThan { return false }
        try ledger.renewRevocationList(now: now)
        try syncRevocations(now: now)
        return true
    }

    private static let noSigningKey = LedgerError(.storage, "no active signing key to sign the revocation list; run regtoken keys activate <kid> (see regtoken keys list) or regtoken keys generate --activate")

    /// Makes the signed file say what the ledger says, signed by the active key. Versions only
    /// go up: a verified file newer than the ledger (a ledger restored from a backup) is
    /// overtaken. The file is trusted only once its signature verifies with the ring: a file
    /// anyone could have written (garbage, an unsigned or foreign version) never sets a version.
    public func syncRevocations(now: Int64) throws(LedgerError) {
        let ring = try keyRing()
        let wanted = try ledger.revocationList()
        let onDisk = try? RevocationList.load(path: revocationsPath, keys: ring)
        if let onDisk, onDisk.version == wanted.version, onDisk.entries == wanted.entries { return }
        var version = wanted.version
        if let diskVersion = onDisk?.version, diskVersion >= version {
            guard diskVersion < RevocationList.maximumVersion else {
                throw LedgerError(.storage, "the revocation list on disk has the largest possible version; no later list can be published")
            }
            version = diskVersion + 1
            try ledger.raiseRevocationVersion(to: version, now: now)
        }
        guard let key = ring.activeKey else {
            throw Self.noSigningKey
        }
        let list = RevocationList(version: version, issuedAt: wanted.version == version ? wanted.issuedAt : now, entries: wanted.entries)
        do { try list.write(to: revocationsPath, signedWith: key) } catch {
            throw LedgerError(.storage, error.reason)
        }
    }
}
