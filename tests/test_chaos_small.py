"""The chaos run, small: every service SIGKILLed and restarted, the broker SIGKILLed, the S3
server SIGKILLed with uploads on their way, the database restarted, poison injected, the
population database and the payment platform each out for a while, all under load, then
reconciled, files read back and hashed, fees checked paid once (see ops/chaos.py).

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
        "the population database down",
        "SIGKILL intake",
        "the payment platform drops its callbacks",
        "SIGKILL routing",
        "SIGKILL the S3 server (file store)",
        "SIGKILL postal",
        "the population database back",
        "pause the Kafka broker for 5 s (SIGSTOP, SIGCONT)",
        "SIGKILL notify",
        "the payment platform sends its callbacks again",
        "SIGKILL documents",
        "the payment platform down",
        "SIGKILL the Kafka broker",
        "the payment platform back",
        "restart PostgreSQL",
    ]
    # the driver: everything offered was accepted, and each fault was recovered from
    assert result["driver"]["accepted"] == result["driver"]["offered"] == 120 and result["driver"]["failed"] == 0
    assert set(result["recovery_s"]) == set(result["faults"])
    assert result["problems"] == []
    assert counts["received"] == counts["submitted"] == 120
    # fees paid online through the payment platform's outages, applicants checked through the
    # population database's: none processed unpaid, none charged twice, all confirmed
    assert counts["fee_dossiers"] > 0 and result["driver"]["fees_paid"] == counts["fee_dossiers"]
    assert counts["fees_settled"] == counts["receipts_kept"] == counts["fee_dossiers_routed"] == counts["fee_dossiers"]
    assert counts["payment_orders"] == counts["fee_dossiers"]
    assert counts["routed_unpaid"] == counts["charged_more_than_once"] == 0
    assert counts["identities_confirmed"] == counts["fee_dossiers"]
    assert counts["identities_confirmed_later"] > 0  # the database's outage struck some of them
    assert counts["receipt_messages_doubled"] == 0
    # every file an online dossier names is in the store and hashes to its name, S3 killed mid-upload
    assert counts["files_bound"] > 0 and counts["files_missing"] == counts["files_corrupt"] == 0
    assert counts["apologies"] == counts["late_dossiers"] > 0
    assert all(n == 4 for n in counts["dead_letters"].values())
    # official documents through the same faults: each arrived once, none parked
    assert counts["documents_sent"] == counts["documents_registered"] == counts["documents_arrived"] >= 6
    assert counts["document_arrival_events_doubled"] == counts["documents_dead_letters"] == 0
