"""``make demo``: the platform on its local stack, for a newcomer to watch.

Starts Kafka and PostgreSQL, runs intake and routing as separate processes, submits a few
dossiers the way a portal and a one-stop counter would, shows each one crossing from intake
to routing, and prints one dossier's trace across both services.
"""

from __future__ import annotations

import sys
import time

import httpx

from ops import stack
from ops.processes import service
from ops.traceview import load_trace, render_tree
from shared.settings import Settings

DOSSIERS = [
    ("online", "1.001193", "000.00.12.H41", "Nguyễn Thị Hồng Nhung", "Số 5, phố Lê Lợi, phường Đông Thành, TP Ninh Bình"),
    ("counter", "2.000908", "000.21.12.H41", "Trần Văn Đức", "Thôn Lục Bình, xã Lục Bình, huyện Bạch Thông, Bắc Kạn"),
    ("postal", "1.004227", "000.00.15.H56", "Lê Thị Ánh Tuyết", "Khu 3, thị trấn Hưng Hóa, huyện Tam Nông, Phú Thọ"),
    ("online", "1.000894", "000.00.12.H41", "Phạm Quốc Việt", "Xóm Đồng, xã Ninh Hải, huyện Hoa Lư, Ninh Bình"),
    ("counter", "2.001711", "000.00.15.H56", "Hoàng Thị Thu Hà", "Tổ 7, phường Trường Thi, TP Thanh Hóa"),
]


def _applicant(i: int, name: str, address: str) -> dict:
    return {"full_name": name, "id_number": f"0012030045{i:02d}", "phone": f"09123456{i:02d}", "address": address}


def main() -> int:
    settings = Settings()
    try:
        stack.start()
    except stack.StackError as exc:
        print(f"[demo] cannot start the local stack: {exc}", file=sys.stderr)
        return 1
    logs = settings.state_dir / "logs"
    procs = []
    try:
        for name in ("routing", "intake"):
            print(f"[demo] starting {name} (log: {logs / (name + '.log')})", flush=True)
            procs.append(service(name, {}, logs).start())
        intake, routing = procs[1], procs[0]
        print("\n[demo] submitting dossiers to intake over HTTP\n")
        received = []
        with httpx.Client(timeout=10) as http:
            for i, (channel, procedure, agency, name, address) in enumerate(DOSSIERS, start=1):
                r = http.post(f"{intake.url}/v1/dossiers", json={
                    "channel": channel, "procedure_code": procedure, "agency_code": agency,
                    "applicant": _applicant(i, name, address),
                }, headers={"Idempotency-Key": f"demo-{time.time_ns()}-{i}"})
                r.raise_for_status()
                d = r.json()
                received.append((d, time.monotonic()))
                print(f"  intake   received {d['code']:<28} {channel:<8} {name}")
            print("\n[demo] waiting for routing to take each dossier in\n")
            for d, sent_at in received:
                deadline = time.monotonic() + 30
                while True:
                    r = http.get(f"{routing.url}/v1/dossiers/{d['id']}")
                    if r.status_code == 200:
                        row = r.json()
                        hop_ms = (time.monotonic() - sent_at) * 1000
                        print(f"  routing  recorded {row['code']:<28} at {row['agency_code']:<15} "
                              f"trace {row['trace_id']}  (seen after {hop_ms:.0f} ms)")
                        break
                    if time.monotonic() > deadline:
                        print(f"  routing  has not recorded {d['code']} after 30 s", file=sys.stderr)
                        return 1
                    time.sleep(0.1)
        first = received[0][0]
        time.sleep(1.0)  # let both services flush their spans
        print(f"\n[demo] the journey of {first['code']} as one trace ({first['trace_id']}):\n")
        print(render_tree(load_trace(settings.traces_path, first["trace_id"])))
        print(f"\n[demo] again later with:  .venv/bin/lgsp trace {first['trace_id']}")
        print("[demo] the stack keeps running; stop it with:  make stack-stop\n")
        return 0
    finally:
        for p in procs:
            p.stop()
