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
        "534c10585ce8e9ac46297b53ef67e9dde1ec0b6a384ad10e5b55281d9f9e3242",
        "edd34d5aed6abd752ba63c33c4fb6a86beba41c203bd3cd5f7002875c6433aa1",
        "d995f3ae81d924801a095320c67ea925c81296ff9dc8d52e5ecb54b471ddd5a1",
    ),
    "batch seed 1 span": (
        "e3c519e23d307a833f6d681d1b6353c8d198b8a432e30721d7c00ffffd087a03",
        "4341ad9d456b889dbad1e3da3394ca6e2ff39c37e9f76413e44cda31312fee5d",
        "d9e0d027aafc8858e73402d7424360d4425338e3488e99bc71c9a31d8b7ffd0f",
    ),
    "batch all types": (
        "4b4fd0ae19ddfbe313d150acc7f81d3713bfa8b8bb0f31891000809296ebc077",
        "c98978e825f93352598e93ceb5d7039bd9939a30097b3d57e0f081e43321613a",
        "126ade446235f9ba56382212dc167c0353467fc4049f4b7fa7703eeb2eec3296",
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
        "f2e609769d7e2ae7346ccc3a5d5a808d3a89cba6623de2064a2cab534e2357dd",
        "ed17885471dbf8e2b28e7b4602510017b159441dc514e8a686005c972cddb0be",
        "bf49bdca949ad75f45bf0a44d520bb930c2ea90025764b64574ad7cf6e9b1c4f",
    ),
    "iter_events like send": (
        "0320f1f2625d3e5624ec216ac171fada7e5fdd21001b1642c5f1933a064a2dde",
        "2692ce77c4bb96cedcdafc9fe3977b072b71566daf48cb2e699efdb05019ec3f",
        "3988afe0c7324faac104584283654e26580e7fd20bad9d11513ef8e576a9cb04",
    ),
    "make each type": (
        "3a3aaccc2db5d2e7c136c43b05427bf3263a102d4c7365b3184384156f423916",
        "241b1c36e464dfc15df879cf4e64bebc7cef56ea30b6c0d80c6cb9faf88a3447",
        "e1c66441f98579f59bf27205c7df83c9dc2e41b1e655ec4801ff6e708e60aba0",
    ),
    "make each type at": (
        "f10c9c04448c5483d3a84c4c15ba0a0001cb34689a834105ae1dc527e0d32a39",
        "64140f67e01ae07cf60661126a3a3583680278cd95bb5a9a009fa9b3cc285e0c",
        "b6cfb258e21d2b7d60f3423ae8d250ddfbc7394c6791f138aba396ee80630585",
    ),
    "post_call_transcription": (
        "123c08eaf1c10f4dbfb8855b0ffae5fd2b097bd505ad89263a43b6b6f233b7e0",
        "aef111145174d4dca83d59180f5e59ad820e248e61433009e57982a5d30d7bb5",
        "1a60c72301335743f89825e4f354afada71680d7ee0e6967fc440f5fdbe9a464",
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
