#!/usr/bin/python3
"""A PRISEM RPC server written to the contract (shared/PRISEM.md) with pika, as the originals were.

Usage: contract_server.py URL QUEUE [REPLIES_JSON_FILE | --echo]

Declares QUEUE (not durable, not exclusive, not auto-delete), prefetch 1, manual ack. For each
request it publishes the reply to the default exchange with the request's reply_to and
correlation_id (no content type, no delivery mode), then acks.

Without REPLIES_JSON_FILE the reply's stdout is a JSON object {"appdata": <the request's
appdata>, "data": <its base64 `data` decoded>} and retcode 0. With it, the file holds one
recorded reply appdata {"retcode", "stdout", "stderr"} (streams base64) sent back as is.
Prints "ready" on stdout once consuming; stops on SIGTERM.
"""
import base64
import json
import os
import signal
import sys
import time

import pika


def main():
    url, queue = sys.argv[1], sys.argv[2]
    recorded = None
    echo = len(sys.argv) > 3 and sys.argv[3] == "--echo"
    if len(sys.argv) > 3 and not echo:
        with open(sys.argv[3]) as f:
            recorded = json.load(f)
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    ch.queue_declare(queue=queue, durable=False, exclusive=False, auto_delete=False)
    ch.basic_qos(prefetch_count=1)

    def on_request(channel, method, props, body):
        appdata = json.loads(body)["appdata"]
        if recorded is not None:
            reply = recorded
        elif echo:
            reply = {"retcode": 0, "stdout": appdata.get("data", ""), "stderr": ""}
        else:
            data = base64.b64decode(appdata.get("data", "")).decode("utf-8", "replace")
            out = json.dumps({"appdata": appdata, "data": data}, sort_keys=True)
            reply = {"retcode": 0, "stdout": base64.b64encode(out.encode()).decode(), "stderr": ""}
        envelope = {"appdata": reply, "hostname": "pika.localdomain", "name": "contract_server",
                    "pid": os.getpid(), "pika_version": pika.__version__, "platform": "test",
                    "protocolver": "0.5.5", "release": "1.1.3", "time": int(time.time())}
        channel.basic_publish(exchange="", routing_key=props.reply_to, body=json.dumps(envelope),
                              properties=pika.BasicProperties(correlation_id=props.correlation_id))
        channel.basic_ack(delivery_tag=method.delivery_tag)

    signal.signal(signal.SIGTERM, lambda *_: ch.stop_consuming())
    ch.basic_consume(queue=queue, on_message_callback=on_request)
    print("ready", flush=True)
    ch.start_consuming()
    conn.close()


if __name__ == "__main__":
    main()
