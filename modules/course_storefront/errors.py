"""The errors a storefront call answers, as JSON-RPC 2.0 error objects.

Each has a code of the JSON-RPC spec or of ours and a stable slug,
``data.type``, that clients switch on; the message is translated in the
request's language."""

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
NOT_AUTHENTICATED = -32001
NOT_FOUND = -32004
BUSINESS_RULE = -32010

CODES = {
    PARSE_ERROR: "Parse error",
    INVALID_REQUEST: "Invalid request",
    METHOD_NOT_FOUND: "Method not found",
    INVALID_PARAMS: "Invalid params",
    INTERNAL_ERROR: "Internal error",
    NOT_AUTHENTICATED: "Not authenticated",
    NOT_FOUND: "Not found",
    BUSINESS_RULE: "Business rule",
    }


class StorefrontError(Exception):
    "An error a call answers: code, slug, message and extra data"

    def __init__(self, code, type_, message, **data):
        super().__init__(message)
        self.code = code
        self.type = type_
        self.message = message
        self.data = data

    def as_json(self):
        return {
            'code': self.code,
            'message': self.message,
            'data': dict(self.data, type=self.type),
            }


def not_found(message, **data):
    return StorefrontError(NOT_FOUND, 'not_found', message, **data)


def refused(type_, message, **data):
    "A business rule refuses the call"
    return StorefrontError(BUSINESS_RULE, type_, message, **data)


def invalid_params(message, **data):
    return StorefrontError(INVALID_PARAMS, 'params.invalid', message, **data)
