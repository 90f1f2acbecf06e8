import FoundationEssentials
import GRDB
import RegToken

/// An account of `regtoken serve`: the namespaces it owns and its API keys (ids and hashes).
public struct AccountRecord: Sendable, Hashable {
    public struct Key: Sendable, Hashable {
        public var id: String
        public var createdAt: Int64
        /// Set once the key was rotated: it keeps working until then.
        public var expiresAt: Int64?
    }

    public var name: String
    public var createdAt: Int64
    public var namespaces: [String]
    public var keys: [Key]
}

extension Ledger {
    /// Account names are repository name components (`[a-z0-9]+` with `.`, `_`, `__` or `-` runs
    /// between), 1 to 64 bytes: an account owns the namespace of its own name by default.
    public static func validateAccountName(_ name: String) throws(LedgerError) {
        guard name.utf8.count <= 64, TokenClaims.isNameComponent(name) else {
            throw LedgerError(.invalidInput, "invalid account name '\(name.prefix(80))': use 1 to 64 lowercase letters, digits and single . _ - between them (it is also a namespace)")
        }
    }

    static func validateNamespace(_ ns: String) throws(LedgerError) {
        guard ns.utf8.count <= 64, TokenClaims.isNameComponent(ns) else {
            throw LedgerError(.invalidInput, "invalid namespace '\(ns.prefix(80))': use 1 to 64 lowercase letters, digits and single . _ - between them")
        }
    }

    /// Adds an account owning `namespaces` (its own name when empty), with `key` as its API key.
    public func addAccount(name: String, namespaces: [String], key: APIKey, now: Int64) throws(LedgerError) {
        try Self.validateAccountName(name)
        let owned = namespaces.isEmpty ? [name] : namespaces
        for ns in owned { try Self.validateNamespace(ns) }
        guard Set(owned).count == owned.count else { throw LedgerError(.invalidInput, "a namespace is given twice") }
        let hash = key.hash
        try write("add the account") { db in
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM account WHERE name = ?", arguments: [name]) == true {
                throw LedgerError(.invalidInput, "account \(name) already exists (see regtoken accounts list)")
            }
            for ns in owned {
                if let owner = try String.fetchOne(db, sql: "SELECT account FROM namespace WHERE name = ?", arguments: [ns]) {
                    throw LedgerError(.invalidInput, "namespace \(ns) is already owned by account \(owner)")
                }
            }
            try db.execute(sql: "INSERT INTO account(name, created_at) VALUES (?, ?)", arguments: [name, now])
            for ns in owned {
                try db.execute(sql: "INSERT INTO namespace(name, account) VALUES (?, ?)", arguments: [ns, name])
            }
            try db.execute(sql: "INSERT INTO api_key(id, account, hash, created_at, expires_at) VALUES (?, ?, ?, ?, NULL)",
                           arguments: [key.id, name, Data(hash), now])
            try Self.bumpNamespaces(db, now: now)
        }
    }

    /// Every account, by name.
    public func accounts(now: Int64) throws(LedgerError) -> [AccountRecord] {
        try read("list accounts") { db in
            let rows = try Row.fetchAll(db, sql: "SELECT name, created_at FROM account ORDER BY name")
            return try rows.map { row in try Self.account(db, name: row["name"], createdAt: row["created_at"], now: now) }
        }
    }

    public func account(named name: String, now: Int64) throws(LedgerError) -> AccountRecord? {
        try read("read the account") { db in
            guard let created = try Int64.fetchOne(db, sql: "SELECT created_at FROM account WHERE name = ?", arguments: [name]) else { return nil }
            return try Self.account(db, name: name, createdAt: created, now: now)
        }
    }

    static func account(_ db: Database, name: String, createdAt: Int64, now: Int64) throws -> AccountRecord {
        let namespaces = try String.fetchAll(db, sql: "SELECT name FROM namespace WHERE account = ? ORDER BY name", arguments: [name])
        let keys = try Row.fetchAll(db, sql: "SELECT id, created_at, expires_at FROM api_key WHERE account = ? AND (expires_at IS NULL OR expires_at > ?) ORDER BY created_at, id",
                                    arguments: [name, now])
            .map { AccountRecord.Key(id: $0["id"], createdAt: $0["created_at"], expiresAt: $0["expires_at"]) }
        return AccountRecord(name: name, createdAt: createdAt, namespaces: namespaces, keys: keys)
    }

    /// Removes an account: its tokens in every region (revoking those a verifier could still
    /// accept), its API keys and its namespaces, in one transaction. Returns the removed tokens.
    public func removeAccount(name: String, now: Int64) throws(LedgerError) -> [TokenRecord] {
        try write("remove the account") { db in
            guard try Bool.fetchOne(db, sql: "SELECT 1 FROM account WHERE name = ?", arguments: [name]) == true else {
                throw LedgerError(.notFound, "no account \(name) (see regtoken accounts list)")
            }
            let tokens = try Row.fetchAll(db, sql: "SELECT * FROM token WHERE account = ?", arguments: [name]).compactMap(Self.record)
            try Self.delete(tokens, db, now: now)
            try db.execute(sql: "DELETE FROM account WHERE name = ?", arguments: [name])
            try Self.bumpNamespaces(db, now: now)
            return tokens
        }
    }

    /// A new API key for `name`; the keys it had keep working for `overlap` seconds (0: they stop
    /// now; a key already set to stop sooner keeps its time).
    public func rotateKey(name: String, newKey: APIKey, overlap: Int64, now: Int64) throws(LedgerError) {
        guard overlap >= 0 else { throw LedgerError(.invalidInput, "the overlap cannot be negative") }
        try write("rotate the API key") { db in
            guard try Bool.fetchOne(db, sql: "SELECT 1 FROM account WHERE name = ?", arguments: [name]) == true else {
                throw LedgerError(.notFound, "no account \(name) (see regtoken accounts list)")
            }
            if overlap == 0 {
                try db.execute(sql: "DELETE FROM api_key WHERE account = ?", arguments: [name])
            } else {
                try db.execute(sql: "UPDATE api_key SET expires_at = min(coalesce(expires_at, ?), ?) WHERE account = ?",
                               arguments: [now + overlap, now + overlap, name])
            }
            try db.execute(sql: "INSERT INTO api_key(id, account, hash, created_at, expires_at) VALUES (?, ?, ?, ?, NULL)",
                           arguments: [newKey.id, name, Data(newKey.hash), now])
        }
    }

    /// The account an API key belongs to, if the key is known and has not expired. The stored
    /// hash is compared in constant time.
    public func authenticate(_ key: APIKey, now: Int64) throws(LedgerError) -> String? {
        let row = try read("check an API key") { db in
            try Row.fetchOne(db, sql: "SELECT account, hash, expires_at FROM api_key WHERE id = ?", arguments: [key.id])
        }
        guard let row else { return nil }
        let stored: Data = row["hash"]
        guard Digest.constantTimeEquals(Array(stored), key.hash) else { return nil }
        if let expires: Int64 = row["expires_at"], expires <= now { return nil }
        return row["account"]
    }

    /// Deletes API keys whose overlap ended.
    public func purgeExpiredKeys(now: Int64) throws(LedgerError) {
        try write("delete expired API keys") { db in
            try db.execute(sql: "DELETE FROM api_key WHERE expires_at IS NOT NULL AND expires_at <= ?", arguments: [now])
        }
    }

    /// The namespace map (namespace → account), its version and when it last changed.
    public func namespaceMap() throws(LedgerError) -> (owners: [String: String], version: UInt64, issuedAt: Int64) {
        try read("read the namespace map") { db in
            var owners: [String: String] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT name, account FROM namespace") { owners[row["name"]] = row["account"] }
            let version = try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'namespaces_version' AND typeof(value) = 'integer'") ?? 0
            let issued = try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'namespaces_issued_at' AND typeof(value) = 'integer'") ?? 0
            return (owners, UInt64(max(0, version)), issued)
        }
    }

    /// The versions of the revocation list and of the namespace map, in one read: what a cache
    /// built from both compares to know it is current.
    public func versions() throws(LedgerError) -> (revocations: UInt64, namespaces: UInt64) {
        try read("read the versions") { db in
            let namespaces = try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'namespaces_version' AND typeof(value) = 'integer'") ?? 0
            return (try Self.storedVersion(db), UInt64(max(0, namespaces)))
        }
    }

    /// True when at least one account exists (the namespace map is then the accounts').
    public func hasAccounts() throws(LedgerError) -> Bool {
        try read("read accounts") { db in try Bool.fetchOne(db, sql: "SELECT 1 FROM account LIMIT 1") == true }
    }

    static func bumpNamespaces(_ db: Database, now: Int64) throws {
        try db.execute(sql: "UPDATE meta SET value = value + 1 WHERE key = 'namespaces_version'")
        try db.execute(sql: "UPDATE meta SET value = ? WHERE key = 'namespaces_issued_at'", arguments: [now])
    }
}
