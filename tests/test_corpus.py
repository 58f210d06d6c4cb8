"""Tests of vawgan.corpus: the one audio-extension set, audio inputs, utterance lists."""

from __future__ import annotations

import pytest

from vawgan.corpus import (AUDIO_EXTENSIONS, collect_audio, is_audio, list_corpus, list_speakers,
                           parse_utt_spec, read_utt_list)
from vawgan.errors import CorpusError


def test_audio_extensions_are_what_soundfile_reads():
    import soundfile as sf

    formats = {f.lower() for f in sf.available_formats()}
    for ext in ("wav", "flac", "ogg", "aiff", "au", "caf", "w64", "rf64", "voc"):
        assert ext in AUDIO_EXTENSIONS and ext in formats
    assert is_audio("a/B.WAV") and is_audio("x.flac") and not is_audio(".hidden.wav")
    assert not is_audio("notes.txt") and not is_audio("feats.npz")


def test_collect_audio_folder_and_list(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    for name in ("b.flac", "a.wav", "c.aiff", ".x.wav", "readme.txt"):
        (d / name).write_bytes(b"")
    (d / "sub.wav").mkdir()
    assert [p.name for p in collect_audio(d)] == ["a.wav", "b.flac", "c.aiff"]
    lst = tmp_path / "in.list"
    lst.write_text("# comment\nin/a.wav\n\n/abs/z.wav\n")
    assert [str(p) for p in collect_audio(lst)] == [str(d / "a.wav"), "/abs/z.wav"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="--ref folder holds no audio files"):
        collect_audio(tmp_path / "empty", "--ref")
    with pytest.raises(CorpusError, match="neither a folder nor a list file"):
        collect_audio(tmp_path / "none")
    (tmp_path / "bin.list").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(CorpusError, match="binary file"):
        collect_audio(tmp_path / "bin.list")


def test_one_utt_list_reader_for_files_and_lines(tmp_path):
    lines = ["# train", "A/100001", "", "B/100002.npz  # comment"]
    assert read_utt_list(lines) == [("A", "100001"), ("B", "100002")]
    p = tmp_path / "train.list"
    p.write_text("\n".join(lines) + "\n")
    assert read_utt_list(p) == read_utt_list(str(p)) == [("A", "100001"), ("B", "100002")]
    assert read_utt_list(["# nothing"]) == []
    for bad in ("A-100001", "A/b/c", "A /1", "/1"):
        with pytest.raises(CorpusError, match="utterance list, line 1: expected 'speaker/utt'"):
            read_utt_list([bad])
    p.write_bytes(b"\xff\xfe")
    with pytest.raises(CorpusError, match="cannot read utterance list"):
        read_utt_list(p)


def test_parse_utt_spec_and_corpus_listing(tmp_path):
    assert parse_utt_spec(["1-3, x", "0098-0100"]) == {"1", "2", "3", "x", "0098", "0099", "0100"}
    with pytest.raises(ValueError, match="end before start"):
        parse_utt_spec(["9-8"])
    for spk in ("S2", "S1", ".git"):
        (tmp_path / spk).mkdir()
    (tmp_path / "S1" / "u1.wav").write_bytes(b"")
    (tmp_path / "S1" / "u1.flac").write_bytes(b"")
    (tmp_path / "S2" / "u2.ogg").write_bytes(b"")
    assert list_speakers(tmp_path) == ["S1", "S2"]
    items, problems = list_corpus(tmp_path, utts=[("S1", "u1"), ("S2", "u9")])
    assert [(s, u) for s, u, _ in items] == [("S1", "u1")]
    assert any("duplicate" in p["error"] for p in problems)
    assert any("listed utterance not found" in p["error"] for p in problems)
