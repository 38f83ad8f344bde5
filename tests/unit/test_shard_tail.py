"""Shard tails: tar's end marker and a small unnamed member take the same 1024 bytes."""

from __future__ import annotations

from anigan.shards import END, ShardWriter, Usage, cut_tail, iter_members


def write(folder, names_and_data, close: bool):
    writer = ShardWriter(folder, "raw", shard_size=100)
    members = [writer.add(name, data) for name, data in names_and_data]
    writer.flush()
    if close:
        writer.close()
    return writer, members


def test_a_small_unnamed_last_member_is_cut_not_taken_for_the_end_marker(tmp_path):
    # A killed run wrote a 300-byte member after the named one and no end marker: the file is the
    # named bytes plus exactly 1024 (header and one padded block), the end marker's size.
    writer, (named, _unnamed) = write(tmp_path, [("a.png", b"x" * 2000), ("b.png", b"y" * 300)], close=False)
    path = tmp_path / named.shard
    usage = Usage()
    usage.add(named)
    assert path.stat().st_size == named.end + len(END)
    assert not usage.whole(path)
    assert cut_tail(tmp_path, "raw", usage) == len(END)
    assert path.stat().st_size == named.end
    writer._file.close()


def test_a_closed_shard_whose_members_are_all_named_is_whole_and_left_alone(tmp_path):
    _, members = write(tmp_path, [("a.png", b"x" * 2000), ("b.png", b"y" * 300)], close=True)
    path = tmp_path / members[0].shard
    usage = Usage()
    for member in members:
        usage.add(member)
    size = path.stat().st_size
    assert usage.whole(path)
    assert cut_tail(tmp_path, "raw", usage) == 0
    assert path.stat().st_size == size
    assert [name for name, _ in iter_members(path)] == ["a.png", "b.png"]
