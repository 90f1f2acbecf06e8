import Foundation
import Testing

/// Request smuggling and form-body parameters, tried against the real registry (docker-registry
/// 2.8, Go's net/http) behind the proxy. Each smuggled request carries its own `Host`
/// (`smuggled-N`); the registry runs at log level info, where every request it serves is logged
/// with its host, so a smuggled request that reached it shows up in its log. The harm each one
/// would do (another account's manifest deleted, a tag re-pointed, a blob mounted) is checked
/// on the registry directly too.
@Suite("regtoken proxy: request smuggling and form bodies against the real registry", .serialized)
struct SmugglingTests {
    struct Setup {
        let registry: Registry
        let issuer: Issuer
        let proxy: ProxyProcess
        let ro: String
        let rw: String
        /// globex/app:v1 and its digest; a layer only globex has.
        let globexManifest: String
        let globexLayer: String

        init() throws {
            registry = try Registry(logLevel: "info")
            issuer = try Issuer()
            ro = try issuer.token().token
            rw = try issuer.token("--readwrite").token
            proxy = try ProxyProcess(upstream: registry.port, args: ["--keys", issuer.home + "/keys"])
            // Images pushed straight to the registry: acme/app, and globex/app with layers of its own.
            let skopeo = try Skopeo()
            for (repo, seed) in [("acme/app", "acme"), ("globex/app", "globex")] {
                let dir = try Harness.tempDir("img")
                let r = try Harness.run("/bin/bash", ["\(Harness.scripts)/make-image.sh", dir, "v1"], env: ["E2E_IMAGE_SEED": seed])
                guard r.status == 0 else { throw HarnessError("make-image: \(r.stderr)") }
                let push = try skopeo(["copy", "-q", "--dest-tls-verify=false", "oci:\(dir):v1", "docker://127.0.0.1:\(registry.port)/\(repo):v1"])
                guard push.status == 0 else { throw HarnessError("push \(repo): \(push.stderr)") }
            }
            let raw = try skopeo(["inspect", "--raw", "--tls-verify=false", "docker://127.0.0.1:\(registry.port)/globex/app:v1"])
            let manifest = try #require(try JSONSerialization.jsonObject(with: Data(raw.stdout.utf8)) as? [String: Any])
            let layers = try #require(manifest["layers"] as? [[String: Any]])
            globexLayer = try #require(layers.last?["digest"] as? String)
            globexManifest = try skopeo(["inspect", "--tls-verify=false", "--format", "{{.Digest}}", "docker://127.0.0.1:\(registry.port)/globex/app:v1"]).out
        }

        func auth(_ token: String) -> String { "Authorization: Basic " + Data("token:\(token)".utf8).base64EncodedString() }

        var registryLog: String { (try? String(contentsOfFile: registry.dir + "/registry.log", encoding: .utf8)) ?? "" }

        /// Status of a request sent straight to the registry (no proxy).
        func direct(_ method: String, _ path: String) throws -> Int {
            try curl((method == "HEAD" ? ["-I"] : ["-X", method]) + ["-o", "/dev/null", "-H", "Accept: application/vnd.oci.image.manifest.v1+json",
                      "http://127.0.0.1:\(registry.port)\(path)"]).status
        }
    }

    struct Case: Encodable {
        let name: String
        let payload: String
        var wait: Double = 1.5
    }

    struct Result: Decodable {
        let statuses: [Int]
        let closed: Bool
        let text: String
    }

    /// Sends each case on its own connection to the proxy (Tests/e2e/raw_http.py).
    func send(_ cases: [Case], port: Int) throws -> [String: Result] {
        let input = String(decoding: try JSONEncoder().encode(cases), as: UTF8.self)
        let r = try Harness.run("/usr/bin/env", ["python3", "\(Harness.scripts)/raw_http.py", String(port)], input: input)
        guard r.status == 0 else { throw HarnessError("raw_http.py: \(r.stderr)") }
        return try JSONDecoder().decode([String: Result].self, from: Data(r.stdout.utf8))
    }

    /// A request the registry would run if it were smuggled: each one does harm another account
    /// would notice, under a host of its own.
    static func smuggled(_ n: Int, _ s: Setup) -> String {
        switch n % 4 {
        case 0: return "DELETE /v2/globex/app/manifests/\(s.globexManifest) HTTP/1.1\r\nHost: smuggled-\(n)\r\nContent-Length: 0\r\n\r\n"
        case 1: return "GET /v2/_catalog HTTP/1.1\r\nHost: smuggled-\(n)\r\n\r\n"
        case 2: return "POST /v2/acme/app/blobs/uploads/?mount=\(s.globexLayer)&from=globex/app HTTP/1.1\r\nHost: smuggled-\(n)\r\nContent-Length: 0\r\n\r\n"
        default: return "PUT /v2/globex/app/manifests/hijacked HTTP/1.1\r\nHost: smuggled-\(n)\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: 2\r\n\r\n{}"
        }
    }

    @Test("Transfer-Encoding spelled otherwise, Connection naming framing headers, bodies on bodiless methods, CL+TE, two CLs, obs-fold, HTTP/1.0 chunked: refused, nothing smuggled")
    func framing() throws {
        let s = try Setup()
        var cases: [Case] = []
        var n = 0
        func add(_ name: String, _ head: String, _ body: (String) -> String) {
            n += 1
            cases.append(Case(name: name, payload: head + body(Self.smuggled(n, s))))
        }
        let get = "GET /v2/acme/app/tags/list HTTP/1.1\r\nHost: r\r\n\(s.auth(s.ro))\r\n"
        let chunkedEnd: (String) -> String = { "0\r\n\r\n" + $0 }
        for method in ["GET /v2/acme/app/tags/list", "HEAD /v2/acme/app/manifests/v1", "DELETE /v2/acme/app/manifests/v1", "POST /v2/acme/app/blobs/uploads/"] {
            for te in ["chunked", "Chunked", "CHUNKED", "cHuNkEd", "chunked ", " chunked", "\tchunked", "chunked, chunked", "gzip, chunked", "identity", "chunked;x=1"] {
                add("\(method) Transfer-Encoding '\(te)'", "\(method) HTTP/1.1\r\nHost: r\r\n\(s.auth(s.rw))\r\nTransfer-Encoding: \(te)\r\n\r\n", chunkedEnd)
            }
            add("\(method) with a Content-Length body", "\(method) HTTP/1.1\r\nHost: r\r\n\(s.auth(s.rw))\r\nContent-Length: \(Self.smuggled(n + 1, s).utf8.count)\r\n\r\n") { $0 }
        }
        for named in ["Content-Length", "content-length", "Transfer-Encoding", "Host", "Authorization", "Content-Type", "keep-alive, Content-Length", "X-Forwarded-For"] {
            add("Connection: \(named)", get.replacingOccurrences(of: "\r\nHost", with: "\r\nConnection: \(named)\r\nHost") + "Content-Length: \(Self.smuggled(n + 1, s).utf8.count)\r\n\r\n") { $0 }
        }
        add("Content-Length and Transfer-Encoding", get + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", chunkedEnd)
        add("Transfer-Encoding and Content-Length", get + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", chunkedEnd)
        add("two equal Content-Lengths", get + "Content-Length: \(Self.smuggled(n + 1, s).utf8.count)\r\nContent-Length: \(Self.smuggled(n + 1, s).utf8.count)\r\n\r\n") { $0 }
        add("two different Content-Lengths", get + "Content-Length: 0\r\nContent-Length: \(Self.smuggled(n + 1, s).utf8.count)\r\n\r\n") { $0 }
        add("Content-Length with a sign", get + "Content-Length: +\(Self.smuggled(n + 1, s).utf8.count)\r\n\r\n") { $0 }
        add("obs-fold Transfer-Encoding", get + "X-A: b\r\n Transfer-Encoding: chunked\r\n\r\n", chunkedEnd)
        add("obs-fold value", get + "Transfer-Encoding: x\r\n chunked\r\n\r\n", chunkedEnd)
        add("space before the colon", get + "Transfer-Encoding : chunked\r\n\r\n", chunkedEnd)
        add("HTTP/1.0 with Transfer-Encoding", get.replacingOccurrences(of: "HTTP/1.1", with: "HTTP/1.0") + "Transfer-Encoding: chunked\r\n\r\n", chunkedEnd)
        add("two Transfer-Encoding headers", get + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", chunkedEnd)
        add("bare LF before Transfer-Encoding", get + "X-A: b\nTransfer-Encoding: chunked\r\n\r\n", chunkedEnd)
        // A refused request (bad token) with a body, the smuggled one pipelined in that body.
        add("refused request with a body", "GET /v2/acme/app/tags/list HTTP/1.1\r\nHost: r\r\nAuthorization: Bearer garbage\r\nContent-Length: \(Self.smuggled(n + 1, s).utf8.count)\r\n\r\n") { $0 }
        // A refused request without a body, then a pipelined request that is smuggling nothing
        // but must be decided on its own (no credentials: 401).
        add("pipelined after a refusal", "GET /v2/globex/app/tags/list HTTP/1.1\r\nHost: r\r\n\(s.auth(s.ro))\r\n\r\n") { _ in
            "GET /v2/_catalog HTTP/1.1\r\nHost: r\r\n\r\n"
        }

        let results = try send(cases, port: s.proxy.port)
        try #require(results.count == cases.count)
        for c in cases {
            let r = try #require(results[c.name])
            if c.name == "pipelined after a refusal" {
                // Each decided on its own: globex is not acme's (403), no credentials (401).
                #expect(r.statuses == [403, 401], "\(c.name): \(r.statuses)")
                continue
            }
            #expect(r.statuses == [400] || (c.name.hasPrefix("refused") && r.statuses == [401]), "\(c.name): \(r.statuses) \(r.text.prefix(300))")
            #expect(r.closed, "\(c.name): the connection stays open after an ambiguous request")
        }
        // A moment for the registry to log anything that reached it.
        usleep(500_000)
        let log = s.registryLog
        #expect(log.contains("http.request.host=\"127.0.0.1:\(s.registry.port)\"") || log.contains("http.request.host=127.0.0.1:\(s.registry.port)"),
                "the registry does not log hosts at this level: the test could not see a smuggled request")
        for i in 1...n { #expect(!log.contains("smuggled-\(i)"), "smuggled request \(i) reached the registry") }
        // And nothing happened there.
        #expect(try s.direct("HEAD", "/v2/globex/app/manifests/v1") == 200)
        #expect(try s.direct("HEAD", "/v2/globex/app/manifests/hijacked") == 404)
        #expect(try s.direct("HEAD", "/v2/acme/app/blobs/\(s.globexLayer)") == 404)
    }

    @Test("a Transfer-Encoding spelled 'Chunked' on an allowed PATCH is re-framed as 'chunked': the registry gets the body, nothing else")
    func reframedPatch() throws {
        let s = try Setup()
        // Start an upload through the proxy.
        let start = try send([Case(name: "start", payload: "POST /v2/acme/app/blobs/uploads/ HTTP/1.1\r\nHost: r\r\n\(s.auth(s.rw))\r\nContent-Length: 0\r\n\r\n")],
                             port: s.proxy.port)["start"]
        let location = try #require(start?.text.split(separator: "\r\n").first { $0.lowercased().hasPrefix("location:") })
        let path = try #require(URL(string: String(location.dropFirst("location:".count)).trimmingCharacters(in: .whitespaces))).path
        let query = try #require(URLComponents(string: String(location.dropFirst("location:".count)).trimmingCharacters(in: .whitespaces))?.percentEncodedQuery)
        let smuggled = Self.smuggled(1, s)
        let body = "0\r\n\r\n" + smuggled  // what a smuggler hides behind a zero chunk
        var chunked = String(body.utf8.count, radix: 16) + "\r\n" + body + "\r\n0\r\n\r\n"
        // Under the request's own Transfer-Encoding spelled 'Chunked', the whole body is data.
        let patch = "PATCH \(path)?\(query) HTTP/1.1\r\nHost: r\r\n\(s.auth(s.rw))\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: Chunked\r\n\r\n"
        chunked = patch + chunked
        let r = try #require(try send([Case(name: "patch", payload: chunked)], port: s.proxy.port)["patch"])
        #expect(r.statuses == [202], "\(r.text.prefix(400))")
        // The registry took every byte of the body as data.
        #expect(r.text.lowercased().contains("range: 0-\(body.utf8.count - 1)"), "\(r.text.prefix(400))")
        usleep(500_000)
        #expect(!s.registryLog.contains("smuggled-1"))
        #expect(try s.direct("HEAD", "/v2/acme/app/blobs/\(s.globexLayer)") == 404)
    }

    @Test("mount and from in a form body (urlencoded, multipart, split between query and body) and forms on manifests: refused, nothing mounted")
    func formBodies() throws {
        let s = try Setup()
        let form = "mount=\(s.globexLayer)&from=globex/app"
        let boundary = "XyZ"
        let multipart = "--\(boundary)\r\nContent-Disposition: form-data; name=\"mount\"\r\n\r\n\(s.globexLayer)\r\n--\(boundary)\r\nContent-Disposition: form-data; name=\"from\"\r\n\r\nglobex/app\r\n--\(boundary)--\r\n"
        func post(_ target: String, _ contentType: String?, _ body: String, chunked: Bool = false) -> String {
            var head = "POST \(target) HTTP/1.1\r\nHost: r\r\n\(s.auth(s.rw))\r\n"
            if let contentType { head += "Content-Type: \(contentType)\r\n" }
            if chunked { return head + "Transfer-Encoding: chunked\r\n\r\n" + String(body.utf8.count, radix: 16) + "\r\n" + body + "\r\n0\r\n\r\n" }
            return head + "Content-Length: \(body.utf8.count)\r\n\r\n" + body
        }
        let uploads = "/v2/acme/app/blobs/uploads/"
        var cases = [
            Case(name: "urlencoded", payload: post(uploads, "application/x-www-form-urlencoded", form)),
            Case(name: "urlencoded, upper case and charset", payload: post(uploads, "Application/X-WWW-Form-Urlencoded; charset=utf-8", form)),
            Case(name: "urlencoded, chunked", payload: post(uploads, "application/x-www-form-urlencoded", form, chunked: true)),
            Case(name: "multipart", payload: post(uploads, "multipart/form-data; boundary=\(boundary)", multipart)),
            Case(name: "harmless from in the query, the real one in the body",
                 payload: post(uploads + "?mount=\(s.globexLayer)&from=acme/app", "application/x-www-form-urlencoded", "from=globex/app")),
            Case(name: "octet-stream body on POST", payload: post(uploads, "application/octet-stream", form)),
            Case(name: "no content type, a body", payload: post(uploads, nil, form)),
            Case(name: "semicolon in the query", payload: post(uploads + "?mount=\(s.globexLayer);from=globex/app&from=acme/app", nil, "")),
        ]
        // A PATCH or PUT of an upload with a form body (the registry reads _state and digest with FormValue too).
        cases.append(Case(name: "PATCH upload as a form",
                          payload: "PATCH /v2/acme/app/blobs/uploads/abc HTTP/1.1\r\nHost: r\r\n\(s.auth(s.rw))\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: \(form.utf8.count)\r\n\r\n\(form)"))
        cases.append(Case(name: "PUT manifest as a form",
                          payload: "PUT /v2/acme/app/manifests/v9 HTTP/1.1\r\nHost: r\r\n\(s.auth(s.rw))\r\nContent-Type: multipart/form-data; boundary=\(boundary)\r\nContent-Length: \(multipart.utf8.count)\r\n\r\n\(multipart)"))
        let results = try send(cases, port: s.proxy.port)
        for c in cases {
            let r = try #require(results[c.name])
            #expect(r.statuses == [400], "\(c.name): \(r.statuses) \(r.text.prefix(300))")
        }
        #expect(results["urlencoded"]?.text.contains("a POST request has no body in the registry API") == true)
        #expect(results["PATCH upload as a form"]?.text.contains("Content-Type must be application/octet-stream") == true)
        #expect(results["PUT manifest as a form"]?.text.contains("form bodies are not accepted") == true)
        #expect(try s.direct("HEAD", "/v2/acme/app/blobs/\(s.globexLayer)") == 404)

        // What clients really send still works: an empty POST, and a mount from a repository the
        // token may pull (its own), with the parameters in the query.
        let ownLayer = try #require(try send([Case(name: "ok", payload: "POST \(uploads) HTTP/1.1\r\nHost: r\r\n\(s.auth(s.rw))\r\nContent-Length: 0\r\n\r\n")],
                                             port: s.proxy.port)["ok"])
        #expect(ownLayer.statuses == [202], "\(ownLayer.text.prefix(300))")
    }
}
