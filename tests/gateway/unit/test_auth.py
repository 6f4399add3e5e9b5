"""SASL PLAIN parsing and the login decision, without a database."""

from __future__ import annotations

import pytest

from app.gateway.auth import AUTH_FAILED, KeyVerifier, PlainError, Principal, parse_plain
from app.store.keys import KeyInfo, hash_key


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        (b"\x00proj\x00secret", ("proj", "secret")),
        (b"proj\x00proj\x00secret", ("proj", "secret")),
        (b"\x00proj\x00", ("proj", "")),
        (b"\x00pr\xffoj\x00s", ("pr\ufffdoj", "s")),
    ],
)
def test_plain_tokens(token: bytes, expected: tuple[str, str]) -> None:
    assert parse_plain(token) == expected


@pytest.mark.parametrize(
    "token", [b"", b"proj", b"\x00proj", b"a\x00b\x00c\x00d", b"other\x00proj\x00secret"]
)
def test_malformed_plain_tokens(token: bytes) -> None:
    with pytest.raises(PlainError):
        parse_plain(token)


def _info(**kw: object) -> KeyInfo:
    fields = {f: None for f in KeyInfo.__dataclass_fields__}
    fields.update(id="k1", project_id="p1", can_write=True, project_active=True)
    fields.update(kw)
    return KeyInfo(**fields)  # type: ignore[arg-type]


class FakeVerifier(KeyVerifier):
    def __init__(self, keys: dict[str, KeyInfo]) -> None:
        super().__init__(engine=None, ttl=5)  # type: ignore[arg-type]
        self._keys = keys

    def _lookup_sync(self, secret_hash: str) -> KeyInfo | None:
        return self._keys.get(secret_hash)


async def test_a_writer_key_of_the_named_project_logs_in() -> None:
    verifier = FakeVerifier({hash_key("s3cret"): _info()})
    result = await verifier.authenticate("p1", "s3cret")
    assert result == Principal(project_id="p1", key_id="k1", key_hash=hash_key("s3cret"))
    assert await verifier.still_valid(result)


async def test_wrong_key_other_project_and_read_key_get_the_same_answer() -> None:
    verifier = FakeVerifier(
        {hash_key("p1key"): _info(), hash_key("reader"): _info(id="k2", can_write=False)}
    )
    assert await verifier.authenticate("p1", "wrong") == AUTH_FAILED
    assert await verifier.authenticate("p2", "p1key") == AUTH_FAILED
    assert await verifier.authenticate("p1", "reader") == AUTH_FAILED


async def test_a_disabled_project_is_named() -> None:
    verifier = FakeVerifier({hash_key("k"): _info(project_active=False)})
    assert "disabled" in await verifier.authenticate("p1", "k")  # type: ignore[operator]
