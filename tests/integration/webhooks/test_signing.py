"""The signature helper mailhook signs with agrees with itself on every way to get it wrong."""

from __future__ import annotations

from mailhook.webhooks.signing import new_secret, signature_header, verify


def test_signature_round_trip_and_refusals() -> None:
    secret, body = new_secret(), b'{"id":"evt_1","type":"ping"}'
    header = signature_header(secret, body, timestamp=1_800_000_000)
    assert header.startswith("t=1800000000,v1=") and len(header.split("v1=")[1]) == 64
    assert verify(secret, body, header, now=1_800_000_100)
    assert not verify(secret, body, header, now=1_800_000_301), "too old: a replay"
    assert not verify(secret, body + b" ", header, now=1_800_000_000), "another body"
    assert not verify(new_secret(), body, header, now=1_800_000_000), "another secret"
    forged = header.replace("t=1800000000", "t=1800000200")
    assert not verify(secret, body, forged, now=1_800_000_200), "the timestamp is inside the MAC"
    for broken in ("", "t=x,v1=00", "v1=00", "garbage", "t=1800000000"):
        assert not verify(secret, body, broken, now=1_800_000_000)
    assert new_secret() != new_secret() and new_secret().startswith("whsec_")
