"""A posted console form (application/x-www-form-urlencoded), read without python-multipart:
the console's forms carry a few short fields, so the body is capped and parsed with the
standard library."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request

from app.api.problems import ApiError

MAX_FORM_BYTES = 16 * 1024


async def read_form(request: Request, max_bytes: int = MAX_FORM_BYTES) -> dict[str, str]:
    """The form's fields (the first value of each name); 413 when the body is over
    ``max_bytes``, 415 when it is not a urlencoded form."""
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise ApiError(415, "UnsupportedMediaTypeError", "Send the form as a browser does.")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise ApiError(413, "PayloadTooLargeError", "The form is too large.")
    fields: dict[str, str] = {}
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=50)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ApiError(400, "InvalidParameterError", "The form could not be read.") from exc
    for name, value in pairs:
        fields.setdefault(name, value)
    return fields
