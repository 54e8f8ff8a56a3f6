#!/usr/bin/python3
"""Writes the pika-encoded messages the codec bench decodes (benches/benches/codec.rs).

Each file holds one message as a client library other than ours puts it on the wire: the method
frame, the content header frame and the body frame, encoded by pika (Debian's python3-pika,
BSD-licensed; only its output is kept here). The properties are two headers, as pika sends them.

    /usr/bin/python3 benches/data/pika/make.py
"""
import pathlib

from pika import frame, spec

HERE = pathlib.Path(__file__).resolve().parent
PROPERTIES = spec.BasicProperties(headers={"x-retry": 3, "x-source": "sensor-7"})


def message(method, body):
    return (
        frame.Method(1, method).marshal()
        + frame.Header(1, len(body), PROPERTIES).marshal()
        + frame.Body(1, body).marshal()
    )


(HERE / "publish.bin").write_bytes(
    message(spec.Basic.Publish(exchange="amq.direct", routing_key="work.items"), b"\xab" * 100)
)
(HERE / "deliver.bin").write_bytes(
    message(
        spec.Basic.Deliver(
            # RabbitMQ's consumer tags: "amq.ctag-" and 22 characters.
            consumer_tag="amq.ctag-Zq3pU8mW1xLrT0hCk5fG9A",
            delivery_tag=1234567,
            redelivered=False,
            exchange="amq.direct",
            routing_key="work.items",
        ),
        b"\xcd" * 4096,
    )
)
