"""OpenAPI additions: every operation documents the one error shape for the errors it can answer."""

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "fields"],
            "properties": {
                "code": {"type": "string", "example": "invalid"},
                "message": {"type": "string"},
                "fields": {
                    "type": "object",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                    "description": 'Field errors by field path ("payload.subscription_id"); empty for other errors.',
                },
            },
        }
    },
}

# Which errors an operation can answer: everything can be unauthenticated, forbidden or throttled.
_COMMON = {"401": "Not authenticated.", "403": "Not allowed (staff only).", "429": "Throttled; see Retry-After."}
# A body is read by api.parsers: too large a body is a 413, a content type it does not read a 415.
_BODY = {"413": "The request body is too large.", "415": "Unsupported content type."}
_BY_METHOD = {
    "get": {"404": "Not found, or not yours.", "400": "Invalid filter or page."},
    "post": {
        "400": "Invalid input; field errors in error.fields.",
        "404": "Not found, or not yours.",
        "409": "The object's state does not allow this.",
        **_BODY,
    },
    "put": {"400": "Invalid input.", "404": "Not found.", **_BODY},
    "patch": {"400": "Invalid input.", "404": "Not found.", **_BODY},
    "delete": {"404": "Not found."},
}


def add_error_responses(result, generator, request, public):
    """drf-spectacular postprocessing hook: the Error component and its responses on every operation."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    reference = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in _BY_METHOD:
                continue
            responses = operation.setdefault("responses", {})
            wanted = {**_COMMON, **_BY_METHOD[method]}
            if "{" not in path and method != "get":
                wanted.pop("404", None)  # a list can 404 too: a page past the end
            for code, description in wanted.items():
                responses.setdefault(code, {"description": description, "content": reference})
    return result
