@testable import CairnHub
import Testing

@Suite struct AuthenticatorTests {
    @Test func `a bearer token is read without the blanks around it, and only from the Bearer scheme`() {
        #expect(Authenticator.bearer(header: "Bearer cairn-admin-abc") == "cairn-admin-abc")
        #expect(Authenticator.bearer(header: "Bearer  \tcairn-admin-abc \t ") == "cairn-admin-abc")
        #expect(Authenticator.bearer(header: "Bearer ") == nil)
        #expect(Authenticator.bearer(header: "Bearer \t  ") == nil)
        #expect(Authenticator.bearer(header: "Basic dXNlcjpwYXNz") == nil)
        #expect(Authenticator.bearer(header: "bearer cairn-admin-abc") == nil)
        #expect(Authenticator.bearer(header: nil) == nil)
    }
}
