"""The chaos run, small: every service SIGKILLed and restarted, the broker SIGKILLed, the S3
server SIGKILLed with uploads on their way, the database restarted, poison injected, all under
load, then reconciled, files read back and hashed (see ops/chaos.py).

It takes the shared broker and database down, and leaves them up again: the tests after it
find the platform as before.
"""

from __future__ import annotations

from ops import chaos
from shared.settings import Settings


async def test_nothing_lost_nothing_twice_under_faults(platform, local_stack, test_env):
    settings = Settings(topic_prefix=test_env["LGSP_TOPIC_PREFIX"], schema_prefix=test_env["LGSP_SCHEMA_PREFIX"])
    result = await chaos.run(platform.procs, local_stack, settings, n=120, rate=15, timeout=240)
    counts = result["counts"]
    assert result["faults"] == [
        "SIGKILL intake",
        "SIGKILL routing",
        "SIGKILL the S3 server (file store)",
        "SIGKILL postal",
        "pause the Kafka broker for 5 s (SIGSTOP, SIGCONT)",
        "SIGKILL notify",
        "SIGKILL documents",
        "SIGKILL the Kafka broker",
        "restart PostgreSQL",
    ]
    # the driver: everything offered was accepted, and each fault was recovered from
    assert result["driver"]["accepted"] == result["driver"]["offered"] == 120 and result["driver"]["failed"] == 0
    assert set(result["recovery_s"]) == set(result["faults"])
    assert result["problems"] == []
    assert counts["received"] == counts["submitted"] == 120
    assert counts["receipt_messages_doubled"] == 0
    # every file an online dossier names is in the store and hashes to its name, S3 killed mid-upload
    assert counts["files_bound"] > 0 and counts["files_missing"] == counts["files_corrupt"] == 0
    assert counts["apologies"] == counts["late_dossiers"] > 0
    assert all(n == 4 for n in counts["dead_letters"].values())
    # official documents through the same faults: each arrived once, none parked
    assert counts["documents_sent"] == counts["documents_registered"] == counts["documents_arrived"] >= 6
    assert counts["document_arrival_events_doubled"] == counts["documents_dead_letters"] == 0
