#!/usr/bin/env python3
"""Writes the sample flow store (prisem-tools/data/flows/) for the rwfind demo and tests.

Deterministic (fixed seed): run it again and the files come out the same. Written for this
project; every address is from the documentation ranges (RFC 5737, RFC 3849).

  python3 prisem-tools/data/make_flows.py
"""
import datetime
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "flows")

rng = random.Random(20140103)
START = datetime.datetime(2014, 1, 2, 0, 0, 0)
HOURS = 72  # 2014-01-02 00:00 .. 2014-01-04 23:59 UTC

inside = ["192.0.2.%d" % i for i in (10, 11, 15, 16, 20, 53, 80, 200, 201)] + [
    "198.51.100.%d" % i for i in (23, 53, 77, 80, 110)
] + ["203.0.113.%d" % i for i in (5, 9, 25, 60)]
outside = ["203.0.113.%d" % i for i in (130, 150, 200, 201, 222)] + ["198.51.100.%d" % i for i in (140, 141)]
services = [(22, 6), (25, 6), (53, 17), (80, 6), (123, 17), (443, 6), (502, 6), (3389, 6)]
flag_sets = ["FSPA", "SPA", "S", "FSRPA", "", "SA", "RA"]


def flow(t, sip, dip, sport, dport, proto):
    packets = rng.randint(1, 400)
    size = rng.randint(40, 1500)
    flags = "" if proto != 6 else rng.choice(flag_sets)
    dur = rng.uniform(0, 30) if packets > 1 else 0.0
    return (sip, dip, sport, dport, proto, packets, packets * size, flags, t, dur)


def fmt_rw(f):
    sip, dip, sport, dport, proto, packets, nbytes, flags, t, dur = f
    stime = t.strftime("%Y/%m/%dT%H:%M:%S.") + "%03d" % (t.microsecond // 1000)
    return "%15s|%15s|%5d|%5d|%3d|%10d|%10d|%8s|%23s|%9.3f|" % (
        sip, dip, sport, dport, proto, packets, nbytes, flags, stime, dur)


def main():
    os.makedirs(OUT, exist_ok=True)
    flows = []
    for _ in range(3000):
        t = START + datetime.timedelta(seconds=rng.uniform(0, HOURS * 3600))
        t = t.replace(microsecond=(t.microsecond // 1000) * 1000)
        dport, proto = rng.choice(services)
        a, b = rng.choice(inside), rng.choice(inside + outside)
        if rng.random() < 0.5:
            a, b = b, a
        flows.append(flow(t, a, b, rng.randint(1024, 65535), dport, proto))
    # The scanner of the incident report: many short SSH attempts on 2014-01-03.
    for i in range(120):
        t = datetime.datetime(2014, 1, 3, 6, 2, 0) + datetime.timedelta(seconds=i * 14.5)
        dst = rng.choice(["192.0.2.15", "192.0.2.16", "192.0.2.20", "198.51.100.23"])
        flows.append(flow(t, "203.0.113.200", dst, 52000 + i, 22, 6))
    flows.sort(key=lambda f: f[8])
    header = "%15s|%15s|%5s|%5s|%3s|%10s|%10s|%8s|%23s|%9s|" % (
        "sIP", "dIP", "sPort", "dPort", "pro", "packets", "bytes", "flags", "sTime", "dur")
    by_day = {}
    for f in flows:
        by_day.setdefault(f[8].date(), []).append(f)
    for day, rows in sorted(by_day.items()):
        with open(os.path.join(OUT, "%s.rw.txt" % day.isoformat()), "w") as out:
            out.write(header + "\n")
            for f in rows:
                out.write(fmt_rw(f) + "\n")
    # A small nfdump CSV export from a second collector (IPv6 included).
    with open(os.path.join(OUT, "collector-b.nfdump.csv"), "w") as out:
        out.write("ts,te,td,sa,da,sp,dp,pr,flg,fwd,stos,ipkt,ibyt\n")
        for i in range(40):
            t = datetime.datetime(2014, 1, 3, 12, 0, 0) + datetime.timedelta(minutes=i * 7)
            src = rng.choice(["2001:db8:bad::17", "203.0.113.200", "2001:db8:200::17"])
            dst = rng.choice(["2001:db8:100::25", "192.0.2.53", "2001:db8:200::80"])
            if ":" in src and ":" not in dst or ":" not in src and ":" in dst:
                dst = "2001:db8:100::25" if ":" in src else "192.0.2.53"
            pk = rng.randint(1, 50)
            te = t + datetime.timedelta(seconds=pk * 0.2)
            out.write("%s,%s,%.3f,%s,%s,%d,%d,%s,%s,0,0,%d,%d\n" % (
                t.strftime("%Y-%m-%d %H:%M:%S.000"), te.strftime("%Y-%m-%d %H:%M:%S.000"),
                pk * 0.2, src, dst, rng.randint(1024, 65535), rng.choice([22, 53, 443]),
                rng.choice(["TCP", "UDP"]), ".AP.SF", pk, pk * rng.randint(60, 1400)))
        out.write("Summary\nflows,bytes,packets,avg_bps,avg_pps,avg_bpp\n40,0,0,0,0,0\n")


if __name__ == "__main__":
    main()
