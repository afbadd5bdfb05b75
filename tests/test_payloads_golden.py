"""The payload factory's output, byte for byte: a fixed seed and options give these exact bodies.

The digests were taken from the factory before it was split by event family (the Studio
and OpenTelemetry families, and the mixes that include them, when those were added; every
call's transcript when it gained per-stage metrics, tools, tokens, charging and failed calls, and
when it became a scripted conversation whose analysis matches what was said); any change
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
        "1c17d1866f43c3237a4789ef0dfef4df6e941b0779eecfadbe9d6452af87222c",
        "e8bf91c05044dc23d2cd92ac5fea0840a388f0f710c06ff0be17cf16410387c1",
        "d608c77f17220ee47ff080bb72bd96cb7ec95776208c9857b15f5ae1972c1f28",
    ),
    "batch seed 1 span": (
        "8c51212d7adee85e0d59091b3608c988435e9575cce92b80c659d99aab9b51d8",
        "decc3cac8f8702c6237e4ea2edc6108afffc79043c137b2d9e169ea0b767ba56",
        "2cdcb73afd72625d7a12dded49deb85426377424f5b660c945f0511fd738e84d",
    ),
    "batch all types": (
        "bc681242420eda55a2b7f4e6262fd7f3a247e61c5d46cc5654297dc26b8ec9fd",
        "68336609b3f5abfafddc9b3e8ffdb2a8f098f03ce7376bcf96e2dc30c67ba0ce",
        "c06bf7f56328f685745fce96356a7ebff53f3ebed7c755dbe9f1e7a2f6670c74",
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
        "1b1f91d502842769e4d597138bc02b6de4508fb40ec88a9511d6a17c5b8163c7",
        "a463da41d153c17970a43d4e8fbc4cfbd08aa67b2a23f26129543e4891d94076",
        "7f7d4e1ad84f0890bd3a0d39e38e270f0186ffe9f1073b66df29475cf2bd9ce2",
    ),
    "iter_events like send": (
        "ac7610e7b5a97be73c0a45e59b6d47a3289f16bf4b1ad0ea35fc0c15424ae18d",
        "5a93137db915e0065a2c3ba7824c750f40a8901a1635a51aa6dee15a84139762",
        "8b6cf784148a86ce6ff3c54d40344653e2b96ece6136a2f52160c4a8545812d6",
    ),
    "make each type": (
        "39d01892b3f266b7f2c7a7d7879e8c2d8036ac42adc44ac3fdcd75d582a32eb7",
        "1f13b838fa499b16189cf6088a2fa76a2407513796271dd41ece612608be8f5c",
        "a95a22a4946f9cb032e5508078b4cf8894149e7a2c59da3a469521a2a1b0f65c",
    ),
    "make each type at": (
        "4073411109c7332bcd1366e694bc254b3f6454aa352d021eee6adccad5a96201",
        "1b0f0e97f8360648ef3808a4b52a09907ec5b7f7b9ebd536a81edbd567868f87",
        "e942a8514f28560ceab7eaeb10578a224a107ea0bd9f00d5f341d2d080c5922f",
    ),
    "post_call_transcription": (
        "a7e0040921fbddd2cb13e5f0cb4a4819787deb92252ab6c09e5e1c90eaeb3160",
        "e19610e29db4fdc64715913884dc0b51ff7d846a26784aa818facbdee8491582",
        "3984fea93b0bb18797f145653e8c5c31a88a7b152cbf223d2ad7e5fa1575e671",
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
        "3571116253b9cbb7ce2cb76748c8e8215d30acb25a5c34f054665f44124f3621",
        "c0a97d3422dc451f4675adcea0d7c95ad5fb4d8afa1b5b5d6599e3d2ba6aab54",
        "7fe64a40c621957b60e711f20f531c1bbdeaab15ab39633b67592904a8692f0d",
    ),
}

SEEDS = (0, 1, 2024)


def digest(make: Make, seed: int) -> str:
    factory = payloads(seed, now=NOW)
    return hashlib.sha256(b"\n".join(factory.body(e) for e in make(factory))).hexdigest()


@pytest.mark.parametrize("case", list(CASES))
def test_same_seed_and_options_give_the_same_bytes_as_before(case: str) -> None:
    assert tuple(digest(CASES[case], seed) for seed in SEEDS) == GOLDEN[case]
