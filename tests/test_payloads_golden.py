"""The payload factory's output, byte for byte: a fixed seed and options give these exact bodies.

The digests were taken from the factory before it was split by event family; any change
to what a seed produces (an added field, a reordered random draw) shows up here. A change
that is meant must update the digest in the same commit, and say why.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest

from elwh_nb import EVENT_TYPES, TUTORIAL_TYPES, PayloadFactory, payloads

NOW = 1_739_537_297.0

Make = Callable[[PayloadFactory], list[dict[str, Any]]]

CASES: dict[str, Make] = {
    "batch seed 0": lambda f: f.batch(40),
    "batch seed 1 span": lambda f: f.batch(25, span_s=600, end=NOW - 50),
    "batch all types": lambda f: f.batch(60, types=list(EVENT_TYPES)),
    "batch weighted": lambda f: f.batch(30, types={"post_call_audio": 1, "call_initiation_failure": 3}),
    "batch tutorial": lambda f: f.batch(10, types=list(TUTORIAL_TYPES)),
    "batch options": lambda f: f.batch(
        30,
        types=list(EVENT_TYPES),
        turns=4,
        successful=False,
        audio_bytes=300,
        provider="sip",
        failure_reason="busy",
        request_id="req1",
        webhook_metadata={"job": 7},
        job_id="job9",
    ),
    "iter_events like send": lambda f: list(f.iter_events(12, types=None, span_s=0.0)),
    "make each type": lambda f: [f.make(t) for t in EVENT_TYPES],
    "make each type at": lambda f: [f.make(t, at=NOW - 1000) for t in EVENT_TYPES],
    "post_call_transcription": lambda f: [
        f.post_call_transcription(),
        f.post_call_transcription(turns=2, successful=True),
        f.post_call_transcription(at=NOW - 5, turns=41, successful=False),
        f.post_call_transcription(turns=1),
    ],
    "post_call_audio": lambda f: [
        f.post_call_audio(),
        f.post_call_audio(audio_bytes=5),
        f.post_call_audio(audio_bytes=0),
    ],
    "call_initiation_failure": lambda f: (
        [
            f.call_initiation_failure(provider=p, failure_reason=r)
            for p in ("sip", "twilio")
            for r in ("busy", "no-answer", "unknown", None)
        ]
        + [f.call_initiation_failure()]
    ),
    "speech_to_text_transcription": lambda f: [
        f.speech_to_text_transcription(),
        f.speech_to_text_transcription(request_id="r", submitted_at=NOW - 99.5),
        f.speech_to_text_transcription(webhook_metadata={"a": [1, "é"]}),
    ],
    "voice events": lambda f: [
        f.voice_removal_notice(),
        f.voice_removal_notice_withdrawn(at=NOW - 3),
        f.voice_removed(),
    ],
    "tutorial events": lambda f: [f.speech_completed(), f.speech_completed(job_id="abc"), f.voice_created()],
}

# sha256 of the bodies (to_body, one per line) for seeds 0, 1 and 2024.
GOLDEN: dict[str, tuple[str, str, str]] = {
    "batch seed 0": (
        "505f42fc3d75ca234ede7d97c4b8befc100a73a1008f660816201edea28cc0d9",
        "83ef31111fded8a518deb280f3d6147cb2afea5649fd4a408f1a034f74e1bf5a",
        "61797f6df0eddbca5a25c8b5de2a9c39cda959e51849355b037ae383dec1b585",
    ),
    "batch seed 1 span": (
        "b0a10a9a7eca9d0a2dcd44091a7a5b2717c90d9730c149f2f90bb8670d53ed0e",
        "9a6774f7b01a994d92bb984d2cd1df28c53248332ee386ea600328b00cac006d",
        "dd058db73134856972e84f72c43dfd74b7f6ab1adbeecdb84a037e248321bea6",
    ),
    "batch all types": (
        "c02b8b2bf1c1a931540302fd2f99d3166ca9e77ed0f6cf1e0da4b9a83f1aa685",
        "b91a0c3ef079ba6cbf5dad65e64c0c49766d5423589e6b91a6bfacaa78f2f804",
        "86c61c3907871e21b5a55e6a01bdce87fbcca6430807998118b39c1f77a24259",
    ),
    "batch weighted": (
        "8b0fccf71d2f1a465f3b6e45361bbfc750e9cbdd93518cf249d5c972c0fb080c",
        "a03bb0c422a9bf2af45a8cce25623c52d267d2031c9e2c5aa16a13672b484801",
        "59c759341b437837044bcffbc948f1851994ebb42c09f5a49b06aa1a01007a2c",
    ),
    "batch tutorial": (
        "413dc7b997b1478911313fcbf4e2b055f0473f11bf4af62e3e7b1a9ff4041bea",
        "b96a45bd750dc814c874cd71db0eab91e00309dd6e47faf91c5f49296fd0e150",
        "f9e6667c382420acbe7a17e8edf20f60e90be46c1cbeed60591c6b5db9987631",
    ),
    "batch options": (
        "f0d283c502d3854ddf017eb67a567b98656394e9d7e44312aabfbc926f801348",
        "31cb574c88ac9f049527569bf2b2bfee60997ef21e9635d050d09b07a592b145",
        "1e9573e3b6eb8032f6b1f3981c46de68ae6cd0932ddf409de504106447d3384e",
    ),
    "iter_events like send": (
        "cb7f56fd633e5baf947d51ce2d034756c3b58d65ea523f52faefb504a784b4c7",
        "d37fbbd002f992fb1d3848359bc4691fe8bbc275fbc49b681a1116ac19ca7c3a",
        "b02ca41c4f4c68a1df32146a23089825ea77b49f044b3ded8f3e705d8262548a",
    ),
    "make each type": (
        "232368277983640603f82fb58bd0de668e8be2970ab14d7fca3620929aaaa952",
        "0891ff1cecfb3cfcf695dfe7815dae19c693e7f1a4cfd1060741f8a04e3fede7",
        "bb552eff67ed624d98ed8caaac3d28771276b1ffca28d201d2f21b112f644056",
    ),
    "make each type at": (
        "f0c847a727caf5693ae812733ca32cd6f3d1f94c274d989f4a4570afd9fbbcd1",
        "7275fdc132e3c51d85ff9807ffd6d3a43120bcbb25e7c7570f59d2460c8a6808",
        "d41b140506dac201741c708f45ec633cb375696ceb50b635925412ceeb568728",
    ),
    "post_call_transcription": (
        "8cc4fa1633d9bee0a3b8a09add479d379c41b2dc93219afbbb7896cc8b4e0362",
        "394d347114c7957712de5aa231f658a510a25f990703f6bbb16da7729dc3390d",
        "d8ba28b05265055949d45c5bd8a3c0f3320a7010be260d8190f47c38d28e7ed5",
    ),
    "post_call_audio": (
        "3519207317c564cb68b7042cbd7c7e6230c7b8bd58022e7795a53bf38581bef2",
        "730e6afa0d60f9eeb8b812427265a331415d8e0902e3c606e2bc137e0bd4137b",
        "b5e28afe1facfea4d558bd3ffdd055a6a02a90007f2450c1ed8b4a16cde0431f",
    ),
    "call_initiation_failure": (
        "249a2088eefd05b19fabdc439a1ecf6f71c2ba89a4a09f7bc627abed16c3455d",
        "6bcb412c1c855d790238e55988310148d940f3adbf6fa8840a0d4a766135ecaf",
        "c55e1ae64b394837d155b880fcd86cf15ee2ef2701e8fe6cb44173b90337cec9",
    ),
    "speech_to_text_transcription": (
        "eb9a9f3696c4c8ead712555a10a954736d181d40023b9b00507f328e5f55b713",
        "29a4de3acbeca4d7ed5ae0ef654b6708038686870500abd1143cc74cee353e3e",
        "4607b382c472e9397149f1feb7ef2ee34f1aaae640cc8d55e30e70cb9bca9b7f",
    ),
    "voice events": (
        "6d9b363e09c23221288c0f4d423c85f84192f7302223d9255116af2f04601356",
        "79f1501d058cb49110c9157fbdf3192fc12860f274ede4b1cdfb6a5b177649f7",
        "ef397277a6c956d005fc5e9a9f8c96d6b92e300692ba6369314d9e079ec9778f",
    ),
    "tutorial events": (
        "6b1a53b1213ac2ae7f62daed3853201de62b72ed1093a05d0e3f06d641d3a52e",
        "de4aca9e78a7a41e7a37afbbd334989f9ff2cd7699e06c53413d1609ca1bd73e",
        "d99e17941d3da71e32bdd4b9729c84bbfcc2b8ed195194aa2526093cdda3cf74",
    ),
}

SEEDS = (0, 1, 2024)


def digest(make: Make, seed: int) -> str:
    factory = payloads(seed, now=NOW)
    return hashlib.sha256(b"\n".join(factory.body(e) for e in make(factory))).hexdigest()


@pytest.mark.parametrize("case", list(CASES))
def test_same_seed_and_options_give_the_same_bytes_as_before(case: str) -> None:
    assert tuple(digest(CASES[case], seed) for seed in SEEDS) == GOLDEN[case]
