"""The gateway's SCRAM client against the published test vector (RFC 7677 section 3) and
against a server that does not know the password."""

from __future__ import annotations

import pytest

from app.gateway.backend_auth import ScramClient, ScramError

# RFC 7677, section 3: user "user", password "pencil", SCRAM-SHA-256.
CLIENT_NONCE = "rOprNGfwEbeRWgbNEkqO"
SERVER_FIRST = (
    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
)
CLIENT_FINAL = (
    b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
)
SERVER_FINAL = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


def _client(password: str = "pencil") -> ScramClient:
    return ScramClient("SCRAM-SHA-256", "user", password, nonce=CLIENT_NONCE)


def test_rfc7677_exchange() -> None:
    client = _client()
    assert client.first() == b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
    assert client.final(SERVER_FIRST) == CLIENT_FINAL
    client.verify(SERVER_FINAL)  # the server proved it knows the password


def test_a_server_signature_for_another_password_is_refused() -> None:
    client = _client("not-pencil")
    client.final(SERVER_FIRST)
    with pytest.raises(ScramError, match="signature"):
        client.verify(SERVER_FINAL)


def test_a_server_error_is_refused() -> None:
    client = _client()
    client.final(SERVER_FIRST)
    with pytest.raises(ScramError, match="invalid-proof"):
        client.verify(b"e=invalid-proof")


def test_a_server_nonce_that_does_not_extend_the_clients_is_refused() -> None:
    with pytest.raises(ScramError, match="nonce"):
        _client().final(b"r=someone-elses-nonce,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")


def test_user_names_are_escaped() -> None:
    client = ScramClient("SCRAM-SHA-512", "a=b,c", "pw", nonce="n0")
    assert client.first() == b"n,,n=a=3Db=2Cc,r=n0"
