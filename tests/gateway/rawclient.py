"""A blocking raw-socket Kafka client for hostile-client tests: exact frames, no retries."""

from __future__ import annotations

import socket
import struct
import time
from typing import Any

from kafka.protocol.api_key import ApiKey
from kafka.protocol.metadata import MetadataRequest
from kafka.protocol.producer import ProduceRequest
from kafka.protocol.sasl import SaslAuthenticateRequest, SaslHandshakeRequest

from app.gateway.wire import decode_response, encode_request


class Raw:
    def __init__(self, port: int, timeout: float = 20) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self._cid = 0

    def close(self) -> None:
        self.sock.close()

    def send_bytes(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _read_exactly(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("closed by the gateway")
            out += chunk
        return out

    def request(self, message: Any, version: int) -> Any:
        self._cid += 1
        self.sock.sendall(encode_request(message, version, self._cid, client_id="raw-test"))
        (size,) = struct.unpack(">i", self._read_exactly(4))
        cid, body = decode_response(message.API_KEY, version, self._read_exactly(size))
        assert cid == self._cid
        return body

    def sasl(self, user: str, password: str) -> Any:
        """The SaslAuthenticate answer (v1) for these credentials."""
        hs = self.request(SaslHandshakeRequest(mechanism="PLAIN"), 1)
        assert hs.error_code == 0
        token = b"\x00" + user.encode() + b"\x00" + password.encode()
        return self.request(SaslAuthenticateRequest(auth_bytes=token), 1)

    def metadata(self, *topics: str, version: int = 9) -> Any:
        req = MetadataRequest(
            topics=[MetadataRequest.MetadataRequestTopic(name=t) for t in topics],
            allow_auto_topic_creation=True,
            include_cluster_authorized_operations=False,
            include_topic_authorized_operations=False,
        )
        return self.request(req, version)

    def produce(self, topic: str, records: bytes, version: int = 9) -> Any:
        """The one partition result of producing ``records`` to partition 0 of ``topic``."""
        req = ProduceRequest(
            transactional_id=None,
            acks=-1,
            timeout_ms=15000,
            topic_data=[
                ProduceRequest.TopicProduceData(
                    name=topic,
                    partition_data=[
                        ProduceRequest.TopicProduceData.PartitionProduceData(
                            index=0, records=records
                        )
                    ],
                )
            ],
        )
        assert req.API_KEY == ApiKey.Produce
        resp = self.request(req, version)
        return resp.responses[0].partition_responses[0]

    def closed_within(self, seconds: float) -> bool:
        """True once the gateway closes the connection (EOF or reset) within ``seconds``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                if self.sock.recv(65536) == b"":
                    return True
            except TimeoutError:
                return False
            except OSError:
                return True
        return False


def batch(values: list[bytes], codec: int = 0, headers: list | None = None) -> bytes:
    from aiokafka.record.default_records import DefaultRecordBatchBuilder

    builder = DefaultRecordBatchBuilder(2, codec, 0, -1, -1, -1, 1 << 31)
    for i, v in enumerate(values):
        builder.append(i, int(time.time() * 1000), None, v, headers or [])
    return bytes(builder.build())
