"""The payload factory's output, byte for byte: a fixed seed and options give these exact bodies.

The digests were taken from the factory before it was split by event family (the Studio
and OpenTelemetry families, and the mixes that include them, when those were added; every
call's transcript when it gained per-stage metrics, tools, tokens, charging and failed calls); any change
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
        f.post_call_transcription(failed=True),
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
    "studio events": lambda f: [
        f.project_conversion_status(),
        f.project_conversion_status(project_id="p1", success=False, submitted_at=NOW - 100),
        f.chapter_conversion_status(),
        f.chapter_conversion_status(project_id="p1", chapter_id="c1", request_id="r1", success=True),
    ],
    "otel events": lambda f: [
        f.post_call_transcription_otel(),
        f.post_call_transcription_otel(turns=3, failed=True),
    ],
}

# sha256 of the bodies (to_body, one per line) for seeds 0, 1 and 2024.
GOLDEN: dict[str, tuple[str, str, str]] = {
    "batch seed 0": (
        "933568a3a89dd1b49fb274e481166b6a1165519629782302dbc8554b6e28dffa",
        "94f6fbd4410b457c92ad43f4ca8e2115a27b04a6637e3db3ae00a13ee325e2a9",
        "a32a06ec1920837917d836bb5c0fe02b7c2a0581253635f3b928277905143b53",
    ),
    "batch seed 1 span": (
        "10e54d3ae49683d224dfd8cc2ca3322d9a93b3086197ccf2b6b0bcae714b30be",
        "73a5c3125b0fb52a822f6b61491f2868f4e88f22d3fc55b8fa80f860fc64bb5f",
        "70a4969f3e1560d6fcedf10d7d8d0127c372de69676a70555a53549a3d3ad3f4",
    ),
    "batch all types": (
        "b9050116c0303926f1f18aa96162938487e8d82d7008ed3c4452363c7668d354",
        "d11d2a7f22bdfc20431b678c605d75e3746855243e1227e852c26d1c8484d3df",
        "c5b91f9794869075ad4ed00663bb7014fc311268bb2d344550b841c59f5ce1ed",
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
        "27be021cfc3308993770e6d4d6e31ad201280f540b4be3f2c592ae4600614abe",
        "40ec3357fb8d027051ae19e51cabb52365820f08b1c8baecee9f9c71ffa1a5fd",
        "ca9205c039d02798d66aeaab618fb546326a1adc4dd9658465f8a55422dd92f7",
    ),
    "iter_events like send": (
        "8252a9d56ddf05eed1e9a0bb53a63206096598873afd2d71e349a1b62f1f7913",
        "3af160a76f8fcf6d8f6a29c7d0481a4d1905cafe0fe5076dc0bfb743e39192d9",
        "cf37717017aaa6ee86cc9ce7717a79069074dbe4b90c2ad4af5f9b57dd50c98c",
    ),
    "make each type": (
        "019948dd197afab7fb0309bbf88b2de6da646e8ebfbb476b2fde35f583a48b96",
        "87d3df0e57ae6c0b32c83d1374ab4b728d0d87d333f0bd41e81268d40b983201",
        "736c957109c73d2230fdfb0f28729e244f63ed4d8937955adc1a7688778f1baf",
    ),
    "make each type at": (
        "c0c3cbd2b714160ec5e312b8f8cb0842f86171ae7301f61ac800e49f2763c5c2",
        "ec2eccfda0e61480e792c9c937dec87938d42c7580215e53799f9d220f44ddfe",
        "0453ab4d02f8b7d3d282b06f60876dcf6a35ec3e8f034f1cd00c24e709fdddec",
    ),
    "post_call_transcription": (
        "5013098acb2dff678c7655dc29ed5e8344389c47b31e56d61f05ae44941e775c",
        "168fd9ab19e71183142ecda36215650d81c1ea8ff235322584296273c95b8b0e",
        "bbce099314fb3ea4fd80ef5b24250a8862e9b936791be3d5f91e7973077d801f",
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
    "studio events": (
        "4aaac746e71da2f21db064d4da7dd51b5f86bf7a1ef4bf78d75792d87117f4d5",
        "3fdff7cd960365aae0856b725490de3baa254bb1949ab0814e2d41ec22da75d0",
        "b76d26125eb2ef02cb223245e6c9cb2557fd814109776186010a1356d33ce681",
    ),
    "otel events": (
        "a8dc9159b56e1ffc0c6f1e4555fca8ea3a90d8bfe3dd2e893f35199459cbdf5d",
        "2eb7fa919bc798958de31a0770c18c731c6948269bd0fae3ffe68b2c6490ea78",
        "547be4f4a05c0a4ec9b6b7a6108ad13ca1970a8080776bf4c9e954d6aa9cf33b",
    ),
}

SEEDS = (0, 1, 2024)


def digest(make: Make, seed: int) -> str:
    factory = payloads(seed, now=NOW)
    return hashlib.sha256(b"\n".join(factory.body(e) for e in make(factory))).hexdigest()


@pytest.mark.parametrize("case", list(CASES))
def test_same_seed_and_options_give_the_same_bytes_as_before(case: str) -> None:
    assert tuple(digest(CASES[case], seed) for seed in SEEDS) == GOLDEN[case]
