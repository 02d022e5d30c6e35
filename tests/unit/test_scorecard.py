"""Decision 766's score card from known figures, every point computed by hand: the threshold
rule, the indicators not measured (0, never full marks, with the reason), and group 5's
"100 % − (late rate + dislike rate)"."""

from __future__ import annotations

from services.intake.report import FIELDS
from shared.scorecard import GROUPS_766, SCORECARD_766, scorecard_766


def counts(**kw) -> dict:
    return {**dict.fromkeys(FIELDS, 0), **kw}


TOTAL = counts(
    received=10,
    synced=9,  # 90 % synced: 6 × 0.9 = 5.4
    resolved_early=2,
    resolved_on_time=5,
    resolved_late=1,
    in_progress_on_time=1,
    in_progress_overdue=1,  # 8 of 10 handled in time: 20 × 0.8 = 16
    components_digitised=8,  # 80 %: full 4
    reused=2,  # 20 % of an 80 % threshold: 0.5 of 2
    approved=6,
    results_digitised=3,  # 50 % of 80 %: 3.75 of 6
    full_online_offered=8,
    full_online_filed=2,  # 25 % of a 50 % threshold: 6 of 12
    rated=5,
    identity_checked=5,
    fee_online=6,
    paid_online=3,
    rated_dissatisfied=1,  # (10 − 2 late − 1 disliked) / 10 = 70 % of a 90 % threshold: 4.67 of 6
)
CATALOGUE = {
    "procedures_in_force": 17,
    "published_in_full": 16,
    "population_connected": 4,
    "fee_procedures": 10,
    "fee_procedures_online": 8,
    "procedures_paid_online": 5,
}  # 94.1 % of 2: 1.88


def test_the_points_add_up_to_100_in_five_groups():
    assert [GROUPS_766[g][1] for g in sorted(GROUPS_766)] == [18, 20, 22, 22, 18]
    for group, (_, maximum) in GROUPS_766.items():
        assert sum(points for g, _, points, _, _ in SCORECARD_766 if g == group) == maximum


def test_every_group_scored_by_hand():
    card = {g["group"]: g for g in scorecard_766(TOTAL, CATALOGUE)}
    assert card[1]["score"] == round(1.88 + 5.4, 1) and card[1]["measured"] == 8
    assert card[2]["score"] == 16.0 and card[2]["measured"] == 20
    # the population database: 5 of 10 received checked there (62.5 % of 80 %: 1.25 of 2); 4 of 17
    # procedures connected (23.5 %, 29.4 % of 80 %: 0.59 of 2)
    assert card[3]["score"] == round(4 + 0.5 + 3.75 + 1.25 + 0.59, 1) and card[3]["measured"] == 16
    # payment: 8 of 10 fee procedures online (1.6 of 2), 5 of 10 paid online (1 of 2), 3 of 6 fee
    # dossiers paid online (3 of 6)
    assert card[4]["score"] == round(6 + 1.6 + 1 + 3, 1) and card[4]["measured"] == 22
    assert card[5]["score"] == 4.7 and card[5]["measured"] == 6  # 4.67, a group is shown to one decimal
    # what is not measured is named with why, and scores 0
    assert "chưa tiếp nhận phản ánh, kiến nghị" in card[5]["basis"]
    assert [g for g in card if card[g]["lost_to_lateness"]] == [2, 5]


def test_nothing_received_scores_nothing():
    card = scorecard_766(counts())
    assert all(g["score"] == 0.0 for g in card)
    assert card[2]["score"] == 0.0  # group 3
    assert "Bản sao điện tử chứng thực: chưa đo" in scorecard_766(TOTAL)[2]["basis"]
