#!/usr/bin/python3
"""Publishes log lines to the `logs` fanout as DIMS programs did, with pika.

Usage: contract_log.py URL EXCHANGE LINE...   (each LINE is one message, sent as is)
"""
import sys

import pika


def main():
    conn = pika.BlockingConnection(pika.URLParameters(sys.argv[1]))
    ch = conn.channel()
    exchange = sys.argv[2]
    ch.exchange_declare(exchange=exchange, exchange_type="fanout", durable=False)
    for line in sys.argv[3:]:
        ch.basic_publish(exchange=exchange, routing_key="", body=line)
    conn.close()


if __name__ == "__main__":
    main()
