import CairnCommon
import Foundation
import Hummingbird
import Logging

/// Answers every failure with `{"error": {"code", "message", "field"}}` and the matching status.
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            return Self.response(for: error, to: request, context: context)
        }
    }

    /// The answer to a failed request. Kept out of `handle`, whose frame every request holds in its task for as
    /// long as it runs — a held long-poll for up to a minute at every connected site: inlined, this made that frame
    /// 3.4 KiB, a slab of the task's allocator of its own (see BENCHMARKS.md, hub memory per site).
    @inline(never)
    static func response(for error: any Error, to request: Request, context: Context) -> Response {
        switch error {
        case let error as CairnError:
            if error.httpStatus >= 500 {
                context.logger.error("request failed", metadata: ["error.message": .string(error.message)])
            }
            return response(for: error)
        case let error as any HTTPResponseError:
            let code = Int(error.status.code)
            let cairnError: CairnError
            switch code {
            case 404: cairnError = CairnError(.notFound, "no such endpoint: \(request.method) \(request.uri.path)")
            case 405: cairnError = CairnError(.notFound, "\(request.method) is not allowed on \(request.uri.path)")
            case 413: cairnError = .bodyTooLarge(limit: context.maxUploadSize)
            case 400..<500: cairnError = CairnError(CairnError.Code(rawValue: "BadRequest"), "bad request: \(error.status.reasonPhrase)")
            default: cairnError = CairnError(.internal, "internal error")
            }
            var response = response(for: cairnError)
            response.status = error.status
            return response
        case is CancellationError:
            return response(for: CairnError(.unavailable, "the hub is shutting down"))
        default:
            context.logger.error("unexpected error", metadata: ["error.message": .string("\(error)")])
            return response(for: CairnError(.internal, "internal error"))
        }
    }

    static func response(for error: CairnError) -> Response {
        let body = (try? CairnJSON.encode(CairnError.Body(error: error))) ?? Data("{}".utf8)
        var headers: HTTPFields = [.contentType: "application/json"]
        if error.code == .tooManyRequests || error.code == .unavailable { headers[.retryAfter] = String(error.retryAfter ?? 1) }
        return Response(status: .init(code: error.httpStatus), headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}

extension Response {
    /// A JSON response in Cairn's encoding (sorted keys, RFC 3339 times).
    static func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) throws -> Response {
        Response(
            status: status, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: try CairnJSON.encode(value))))
    }
}

extension CairnError {
    /// A request body past the upload limit: declared so, read so, or refused so by the server.
    static func bodyTooLarge(limit: Int) -> CairnError {
        CairnError(.tooLarge, "request body is larger than \(limit) bytes", field: "body")
    }
}

extension Request {
    /// Reads and decodes a JSON body within the context's upload limit.
    func decode<T: Decodable>(_ type: T.Type, context: some RequestContext, what: String) async throws -> T {
        // A body declared larger than the limit is refused before a byte of it is read: reading megabytes only to
        // refuse them costs the hub their memory and the client the upload (16 MiB through a loaded debug build's
        // HTTP/2 took longer than a client's 30 s).
        if let declared = headers[.contentLength].flatMap({ Int($0) }), declared > context.maxUploadSize {
            throw CairnError.bodyTooLarge(limit: context.maxUploadSize)
        }
        let buffer: ByteBuffer
        do {
            buffer = try await body.collect(upTo: context.maxUploadSize)
        } catch let error as any HTTPResponseError where error.status == .contentTooLarge {
            throw CairnError.bodyTooLarge(limit: context.maxUploadSize)
        }
        guard buffer.readableBytes > 0 else { throw CairnError(.invalid, "\(what) is required in the request body", field: "body") }
        return try CairnJSON.decode(type, from: Data(buffer.readableBytesView), what: what)
    }

    func pathParameter(_ name: String, context: some RequestContext) throws -> String {
        guard let value = context.parameters.get(name) else {
            throw CairnError(.invalid, "\(name) is required in the path", field: name)
        }
        return value
    }
}
