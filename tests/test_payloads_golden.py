"""The payload factory's output, byte for byte: a fixed seed and options give these exact bodies.

The digests were taken from the factory before it was split by event family (the Studio
and OpenTelemetry families, and the mixes that include them, when those were added); any change
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
        "1a781eb030501196f81f4996ab5d38902e6c708681d120e70bfaccacbe83760b",
        "dc6e353116c62f7fcbc0817933c3f6aa3b4a772c64b62d8f1f2aa4b3f07b4779",
        "0ecf9a46e70df9a8c697a2e644ddcba0d9e59a229ba265a86702bf5df5444458",
    ),
    "batch seed 1 span": (
        "c5449cfa11312db11d8832008a25d821ff35f56f10f401a4e951fe869d34d0c5",
        "1c18252730dfbc7ca9f10cf76213de04a83cd45a38f68fc8c1592acade916f95",
        "b560db70af1ff066913b9df5abfd986d5eeb6c37878ce630b624eea4279bd873",
    ),
    "batch all types": (
        "f8d1f7b7144c843c839efe0393bd78c980e1bf570362f65510b37c9e9332ae13",
        "486fce69c8eb1130a2f6b7adfa4a325a7ced066d14fe46a7bb8b2ba0ff117a56",
        "110807325e0aed0cf14bc9e71bdda4c2aad614f400080dade286eeee4b80d520",
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
        "0200bf422b048dd9cc2ff7e6e5fa32852ed1f3506e331f3a826065b5a6b7a491",
        "4ab6a664dc18bb75aa576e03a136f477dfd188719edd514b93175c64fe01f16e",
        "7a4569f686e40028b396e938c2a734683047cebff2e4801063b69223339c4586",
    ),
    "iter_events like send": (
        "5089ffa1c375452f52b31d4838489c0f2eb366b5dcb443e5de69f64d4da88acc",
        "b124ce320f51ecdb5417e8fb2c975f43d8b75e5f370099360ce1749ba8c29a94",
        "c3214829dbf22c0a6b9afd7fd32b52a1075247deb993e9d29fabea57139942e1",
    ),
    "make each type": (
        "6b26dac3e3da468855e57d778e57f73731d573b3e2c7b79d10659ae884a1a2f5",
        "87afb15cd6bacf3076a61c21b5e741c84ee81844bb65a8c90c5044d5494f34b6",
        "8f05cf2c3a4bcdce60b3032812fea5ba06663dd1197d78e173a1771e3cb1c74e",
    ),
    "make each type at": (
        "f70eaadf94aaaeeffd471372e2e2a5667d86147cb84ade9904ed79eb062a4740",
        "73d772827ec5bbb2261d07fb0a11c5fa8824c83f1f7cf13bebecacdfa330eb8b",
        "686505e6c84cf3a2ca77d3f4177446c28f536c0ce28049b53cc38b74ed3c85c5",
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
    "studio events": (
        "4aaac746e71da2f21db064d4da7dd51b5f86bf7a1ef4bf78d75792d87117f4d5",
        "3fdff7cd960365aae0856b725490de3baa254bb1949ab0814e2d41ec22da75d0",
        "b76d26125eb2ef02cb223245e6c9cb2557fd814109776186010a1356d33ce681",
    ),
    "otel events": (
        "7c663861ecf7bb65f74781abab0ce1c867d14efbed391773fd00009b3505f3b2",
        "dddda4ab4f49ae3369755345ec0e7e851862f7d228e5caab47a71bc2b1e2f952",
        "954cb666e626bd3c88c31b010bf70f1249866c5caf902cf383a2b3801fa7dd81",
    ),
}

SEEDS = (0, 1, 2024)


def digest(make: Make, seed: int) -> str:
    factory = payloads(seed, now=NOW)
    return hashlib.sha256(b"\n".join(factory.body(e) for e in make(factory))).hexdigest()


@pytest.mark.parametrize("case", list(CASES))
def test_same_seed_and_options_give_the_same_bytes_as_before(case: str) -> None:
    assert tuple(digest(CASES[case], seed) for seed in SEEDS) == GOLDEN[case]
