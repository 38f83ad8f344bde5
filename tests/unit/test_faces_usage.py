"""Usage, the named members of each shard, kept as ranges: the same answers as a set of every named member."""

import random

from anigan.shards import END, Member, ShardWriter, Usage, padded


def test_usage_as_ranges_answers_as_a_set_of_members(tmp_path):
    rng = random.Random(11)
    with ShardWriter(tmp_path, "faces", shard_size=40) as writer:
        members = [writer.add(f"{k}.png", b"x" * rng.choice((10, 511, 512, 513, 3000))) for k in range(200)]
    for trial in range(30):
        named = rng.sample(members, rng.randrange(len(members) + 1))
        named += rng.choices(named, k=len(named) // 3) if named else []  # reposts name a member again
        if trial % 2:
            named.sort(key=lambda m: (m.shard, m.offset))  # mostly in shard order, as the stages name them
        usage = Usage()
        for member in named:
            usage.add(member)
        distinct = set(named)
        for path in sorted(tmp_path.glob("faces-*.tar")):
            mine = [m for m in distinct if m.shard == path.name]
            assert usage.used(path.name) == bool(mine)
            assert usage.end(path.name) == max((m.end for m in mine), default=0)
            whole = sum(padded(m.bytes) for m in mine) + len(END) == path.stat().st_size
            assert usage.whole(path) == whole
        assert usage.shards() == {m.shard for m in distinct}


def test_a_shard_named_in_order_is_one_range():
    usage = Usage()
    offset = 512
    for size in (100, 600, 1024, 7):
        usage.add(Member("faces-000000.tar", offset, size))
        offset += padded(size)
    assert len(usage._starts["faces-000000.tar"]) == 1
