#!/usr/bin/python3
"""A PRISEM RPC client written to the contract (shared/PRISEM.md) with pika, as the originals were.

Usage: contract_client.py URL QUEUE APPDATA_JSON [TIMEOUT_SECONDS]

Declares an exclusive server-named reply queue, consumes it with no-ack, publishes the request
envelope in confirm mode with reply_to and correlation_id, waits for the reply with that id and
prints one JSON object: {"retcode", "stdout", "stderr", "envelope"} with the streams decoded.
Exits 3 on time-out, 4 when the request was returned (no queue).
"""
import base64
import json
import os
import platform
import socket
import sys
import time
import uuid

import pika


def main():
    url, queue, appdata = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    timeout = float(sys.argv[4]) if len(sys.argv) > 4 else 30.0
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    reply_queue = ch.queue_declare(queue="", exclusive=True).method.queue
    ch.confirm_delivery()
    corr = str(uuid.uuid4())
    answer = {}

    def on_reply(channel, method, props, body):
        if props.correlation_id == corr:
            answer["body"] = body

    ch.basic_consume(queue=reply_queue, on_message_callback=on_reply, auto_ack=True)
    envelope = {
        "appdata": appdata,
        "hostname": socket.gethostname().split(".")[0] + ".localdomain",
        "name": "contract_client",
        "pid": os.getpid(),
        "pika_version": pika.__version__,
        "platform": platform.platform(),
        "protocolver": "0.5.5",
        "release": "1.1.3",
        "time": int(time.time()),
    }
    try:
        ch.basic_publish(
            exchange="",
            routing_key=queue,
            body=json.dumps(envelope),
            properties=pika.BasicProperties(reply_to=reply_queue, correlation_id=corr),
            mandatory=True,
        )
    except pika.exceptions.UnroutableError:
        print("request returned: no queue", file=sys.stderr)
        sys.exit(4)
    deadline = time.time() + timeout
    while "body" not in answer:
        if time.time() > deadline:
            print("timed out", file=sys.stderr)
            sys.exit(3)
        conn.process_data_events(time_limit=0.1)
    reply = json.loads(answer["body"])
    data = reply["appdata"]
    print(json.dumps({
        "retcode": data["retcode"],
        "stdout": base64.b64decode(data["stdout"]).decode("utf-8", "replace"),
        "stderr": base64.b64decode(data["stderr"]).decode("utf-8", "replace"),
        "envelope": {k: v for k, v in reply.items() if k != "appdata"},
    }))
    conn.close()


if __name__ == "__main__":
    main()
