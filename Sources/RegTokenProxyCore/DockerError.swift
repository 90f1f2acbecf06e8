import NIOCore
import NIOHTTP1

/// Docker registry error responses: `{"errors":[{"code":"…","message":"…","detail":null}]}`.
enum DockerError {
    static func body(code: String, message: String) -> String {
        var out = "{\"errors\":[{\"code\":\""
        out += code
        out += "\",\"message\":\""
        for scalar in message.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    out += "\\u00" + String(scalar.value, radix: 16).leftPadded(2)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\",\"detail\":null}]}"
        return out
    }

    /// The head and body of an error response.
    static func response(status: Int, code: String, message: String, realm: String, version: HTTPVersion,
                         close: Bool, allocator: ByteBufferAllocator) -> (HTTPResponseHead, ByteBuffer) {
        let text = body(code: code, message: message)
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json; charset=utf-8")
        headers.add(name: "Content-Length", value: String(text.utf8.count))
        headers.add(name: "Docker-Distribution-API-Version", value: "registry/2.0")
        if status == 401 { headers.add(name: "WWW-Authenticate", value: "Basic realm=\"\(realm)\"") }
        if close { headers.add(name: "Connection", value: "close") }
        let head = HTTPResponseHead(version: version, status: HTTPResponseStatus(statusCode: status), headers: headers)
        return (head, allocator.buffer(string: text))
    }
}

extension String {
    func leftPadded(_ n: Int) -> String { String(repeating: "0", count: max(0, n - count)) + self }
}
