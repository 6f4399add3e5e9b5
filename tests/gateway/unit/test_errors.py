"""The error codes the edge answers with are Kafka's own numbers."""

from __future__ import annotations

import kafka.errors

from app.gateway import errors

# Kafka's protocol numbers, written out: a test fails if a constant is changed.
KAFKA_CODES = {
    "NONE": 0,
    "CORRUPT_MESSAGE": 2,
    "UNKNOWN_TOPIC_OR_PARTITION": 3,
    "LEADER_NOT_AVAILABLE": 5,
    "NOT_LEADER_OR_FOLLOWER": 6,
    "REQUEST_TIMED_OUT": 7,
    "MESSAGE_TOO_LARGE": 10,
    "NETWORK_EXCEPTION": 13,
    "COORDINATOR_NOT_AVAILABLE": 15,
    "NOT_COORDINATOR": 16,
    "INVALID_TOPIC_EXCEPTION": 17,
    "TOPIC_AUTHORIZATION_FAILED": 29,
    "GROUP_AUTHORIZATION_FAILED": 30,
    "CLUSTER_AUTHORIZATION_FAILED": 31,
    "UNSUPPORTED_SASL_MECHANISM": 33,
    "ILLEGAL_SASL_STATE": 34,
    "UNSUPPORTED_VERSION": 35,
    "TOPIC_ALREADY_EXISTS": 36,
    "INVALID_REQUEST": 42,
    "UNSUPPORTED_FOR_MESSAGE_FORMAT": 43,
    "POLICY_VIOLATION": 44,
    "TRANSACTIONAL_ID_AUTHORIZATION_FAILED": 53,
    "SASL_AUTHENTICATION_FAILED": 58,
    "FENCED_LEADER_EPOCH": 74,
    "UNKNOWN_LEADER_EPOCH": 75,
    "UNSUPPORTED_COMPRESSION_TYPE": 76,
}


def test_every_named_code_is_pinned() -> None:
    named = {k: v for k, v in vars(errors).items() if k.isupper()}
    assert named == KAFKA_CODES


def test_kafka_python_agrees() -> None:
    # An independent list of the same numbers (kafka-python's error classes).
    by_number = {
        cls.errno: cls.__name__
        for cls in vars(kafka.errors).values()
        if isinstance(cls, type) and issubclass(cls, kafka.errors.BrokerResponseError)
    }
    for name, code in KAFKA_CODES.items():
        assert code in by_number, name
    assert by_number[29] == "TopicAuthorizationFailedError"
    assert by_number[2] == "CorruptRecordError"
    assert by_number[53] == "TransactionalIdAuthorizationFailedError"
