"""The pipeline's record-batch decoder returns exactly what kafka-python's own decoding returns."""

from __future__ import annotations

import pytest
from kafka.consumer.fetcher import Fetcher
from kafka.errors import CorruptRecordError
from kafka.record.default_records import DefaultRecordBatchBuilder
from kafka.record.memory_records import MemoryRecords
from kafka.structs import TopicPartition

from pipelines.cdc.events import Record
from pipelines.kafka.records import CorruptRecord, fast_partition_records, iter_records

pytestmark = pytest.mark.unit

TP = TopicPartition("orders.public.orders", 3)
FAST = fast_partition_records(Fetcher.PartitionRecords)


def _batch(records, base_offset=0, codec=0, start=0):
    b = DefaultRecordBatchBuilder(magic=2, compression_type=codec, is_transactional=False, producer_id=-1,
                                  producer_epoch=-1, base_sequence=-1, batch_size=1 << 24)
    for i, (key, value, headers) in enumerate(records):
        assert b.append(start + i, timestamp=1_700_000_000_000 + i * 1000, key=key, value=value,
                        headers=headers) is not None
    raw = bytearray(b.build())
    raw[0:8] = base_offset.to_bytes(8, "big")  # batch base offset (the builder writes 0)
    return bytes(raw)


def _records(n):
    out = []
    for i in range(n):
        key = None if i % 7 == 0 else f'{{"id":{i}}}'.encode()
        value = None if i % 5 == 4 else (b'{"op":"u","payload":"' + b"x" * (i * 37 % 900) + b'"}')
        headers = [("h", b"1"), ("empty", None)] if i % 11 == 0 else []
        out.append((key, value, headers))
    return out


def _kafka_python(data, offset=0):
    part = Fetcher.PartitionRecords(offset, TP, MemoryRecords(data))
    return [Record(TP.topic, TP.partition, m.offset, m.key, m.value) for m in part.take()], part


def _ours(data, offset=0):
    part = FAST(offset, TP, MemoryRecords(data))
    return part.take(), part


@pytest.mark.parametrize("codec", [0, 1, 3], ids=["none", "gzip", "lz4"])
def test_same_records_as_kafka_python(codec):
    # 300 records: offset deltas beyond one varint byte, values up to ~900 bytes (two-byte lengths)
    data = _batch(_records(300), base_offset=1_000_000, codec=codec) + _batch(_records(20), base_offset=1_000_300,
                                                                               codec=codec)
    expected, slow = _kafka_python(data)
    got, fast = _ours(data)
    assert got == expected and len(got) == 320
    assert all(type(r) is Record for r in got)
    assert got[0].offset == 1_000_000 and got[-1].offset == 1_000_319
    assert fast.next_fetch_offset == slow.next_fetch_offset == 1_000_320


def test_position_inside_a_batch_skips_earlier_records_and_take_is_resumable():
    data = _batch(_records(100), base_offset=500)
    part = FAST(540, TP, MemoryRecords(data))
    first = part.take(10)
    assert [r.offset for r in first] == list(range(540, 550))
    assert part.next_fetch_offset == 550
    rest = part.take()
    assert rest[0].offset == 550 and rest[-1].offset == 599 and part.next_fetch_offset == 600


def test_declared_length_mismatch_is_a_clear_error():
    body = _batch([(b"k", b"value", [])])
    rec = bytearray(body[61:])
    rec[0] += 2  # length varint (zig-zag): declare one byte more than the record holds
    with pytest.raises(CorruptRecord, match=r"orders\.public\.orders\[3\]@7: record declares"):
        list(iter_records(bytes(rec), 0, 1, 7, TP.topic, TP.partition))


def test_crc_mismatch_is_refused_like_kafka_python():
    data = bytearray(_batch(_records(5)))
    data[-3] ^= 0xFF  # flip a byte inside the last record's value
    part = FAST(0, TP, MemoryRecords(bytes(data)))
    with pytest.raises(CorruptRecordError, match="failed crc check"):
        part.take()
