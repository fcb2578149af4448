"""Synthetic enrollment requests: realistic, seeded, and labelled with what the rules must say about them.

For tests, demos and benchmarks. A request is built from the region reference: the NIK encodes a real
kecamatan of the responsible regency/city, the worker's birth date and sex; regencies/cities are drawn in
proportion to their population; the mix of segments, categories and funding sources follows what regions
enroll under Inpres 2/2021 (many vulnerable workers funded by the APBD, the region's own non-ASN staff,
formal employees, some construction and migrant workers).

A controlled share of requests is made invalid on purpose, each labelled with exactly the reason codes the
rules produce for it (validated with the same `today` and regions), and a share are re-sends of an earlier
request (same request id), labelled as duplicates. Everything, request ids included, follows from the seed.

It sits beside the services, not in one: the CLI, the benchmarks and the tests use it, and it reads the
registration domain's rules (age, rate table, NIK format, categories and funding) only to stay in step with
them. The modules, in reading order: `generator` (the entry points and what they yield), `drafts` (building
one valid request), `mutations` (breaking one rule on purpose), `mix` (names, the kinds of worker, weights).
"""

from synthetic.generator import RECENT, LabelledData, LabelledRequest, generate, generate_dicts, generate_json
from synthetic.mix import PROFILES, Profile
from synthetic.mutations import GENERATED_CODES

__all__ = [
    "GENERATED_CODES",
    "PROFILES",
    "RECENT",
    "LabelledData",
    "LabelledRequest",
    "Profile",
    "generate",
    "generate_dicts",
    "generate_json",
]
